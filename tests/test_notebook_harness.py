"""The notebook harness: a stuck cell fails the run instead of hanging it."""

import subprocess
import sys
import time
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_runs_notebooks_strictly_with_both_timeouts():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests", "notebooks"]
    assert "--nbval" in options["addopts"] and "--nbval-lax" not in options["addopts"]
    [cell_timeout] = [int(o.split("=")[1]) for o in options["addopts"] if o.startswith("--nbval-cell-timeout=")]
    assert 0 < cell_timeout < int(options["timeout"]) <= 15 * 60


def test_a_cell_that_ignores_interrupts_fails_within_the_cell_timeout(tmp_path):
    stuck = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(stuck), nbformat.v4.new_code_cell("1")])
    nbformat.write(notebook, tmp_path / "stuck.ipynb")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-cell-timeout=3", "--timeout=120", "stuck.ipynb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "Timeout of 3 seconds exceeded" in result.stdout
    assert time.perf_counter() - start < 90
