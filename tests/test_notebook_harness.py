"""The notebook harness: one kernel environment for every runner of the notebooks; a stuck cell fails the run."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from mmlab._kernel_env import KERNEL_ENVIRONMENT, TRAINING_LESSONS, few_steps

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path):
    """The module in a file outside the package (a tool, a benchmark, a conftest), loaded as is."""
    spec = importlib.util.spec_from_file_location(f"_harness_{path.stem}", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # (dataclasses look it up there)
    sys.path.insert(0, str(path.parent))  # its own sibling imports (the e2e harness modules)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_every_notebook_runner_uses_the_one_kernel_environment_changing_only_its_own_settings():
    assert KERNEL_ENVIRONMENT["MMLAB_MODE"] == "offline" and KERNEL_ENVIRONMENT["MMLAB_DEVICE"] == "cpu"
    nbval = _load(ROOT / "conftest.py").KERNEL_ENVIRONMENT
    refresh = _load(ROOT / "tools" / "refresh_notebooks.py").KERNEL_ENVIRONMENT
    browser = _load(ROOT / "tests" / "e2e" / "lab_server.py").KERNEL_ENVIRONMENT
    device = _load(ROOT / "benchmarks" / "lessons_on_device.py").notebook_environment("cuda")
    assert dict(nbval) == dict(refresh) == dict(KERNEL_ENVIRONMENT), "nbval and the refresh tool must agree exactly"
    # What each runner may change: the browser tests run notebooks side by side (one math thread each); the
    # device benchmark runs them on a GPU without a display. Everything else is the committed outputs' environment.
    for name, environment, own in (("tests/e2e", browser, {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}),
                                   ("benchmarks/lessons_on_device.py", device, {"MMLAB_DEVICE", "MPLBACKEND"})):
        changed = {key for key in set(environment) | set(KERNEL_ENVIRONMENT)
                   if environment.get(key) != KERNEL_ENVIRONMENT.get(key)}
        assert changed == own, f"{name} changes {sorted(changed)} of the kernel environment; it may change {sorted(own)}"


def test_pyproject_runs_notebooks_strictly_with_both_timeouts():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests", "notebooks"]
    assert "--nbval" in options["addopts"] and "--nbval-lax" not in options["addopts"]
    [cell_timeout] = [int(o.split("=")[1]) for o in options["addopts"] if o.startswith("--nbval-cell-timeout=")]
    assert 0 < cell_timeout < int(options["timeout"]) <= 15 * 60


@pytest.mark.slow
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


@pytest.mark.parametrize("name", TRAINING_LESSONS)
def test_training_lessons_have_one_steps_line_to_shorten(name):
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    few_steps(notebook.cells, 4, name=name, why="test")
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code").splitlines()
    expected = "STEPS = 4  # test: a few steps (nbval runs the lesson in full)"
    assert [line for line in code if line.startswith("STEPS = ")] == [expected]


def test_a_training_lesson_without_its_steps_line_fails_clearly():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("steps = 400")])
    with pytest.raises(ValueError, match="exactly one top-level line starting with 'STEPS = '"):
        few_steps(notebook.cells, 4, name="06_train_clip.ipynb", why="test")


@pytest.mark.parametrize("name", TRAINING_LESSONS)
def test_training_lessons_keep_their_measured_cpu_steps_on_an_apple_gpu(name):
    """Only CUDA takes the GPU step counts: on MPS (unmeasured, CPU-bound scene rendering) the CPU counts hold."""
    from mmlab.train.blip2_recipe import Blip2Recipe

    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    [line] = [line for cell in notebook.cells if cell.cell_type == "code" for line in cell.source.splitlines()
              if line.startswith("STEPS = ")]
    steps = {device: eval(line.removeprefix("STEPS = "), {"setup": type("Setup", (), {"device": device}),
                                                         "Blip2Recipe": Blip2Recipe})
             for device in ("cpu", "mps", "cuda")}
    assert steps["mps"] == steps["cpu"] < steps["cuda"], steps


def test_kernel_clean_up_finds_processes_without_proc(tmp_path):
    """macOS has no /proc: the browser tests' clean-up lists processes with `ps` instead of crashing in teardown."""
    lab_server = _load(ROOT / "tests" / "e2e" / "lab_server.py")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "mmlab-marker-7f3a"])
    try:
        for proc in [path for path in (Path("/proc"),) if path.is_dir()] + [tmp_path / "no-proc"]:
            deadline = time.monotonic() + 10  # a process just started may not show its command line yet
            while (found := lab_server.processes_mentioning("mmlab-marker-7f3a", proc=proc)) != [sleeper.pid]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert found == [sleeper.pid], proc
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.slow
def test_on_two_workers_a_notebook_runs_in_one_kernel_and_the_browser_tests_in_one_worker(tmp_path):
    """The root conftest's scheduling (loaded here with `-p conftest`), on a copy of the suite's layout: a later
    cell that uses a name an earlier one defined fails if the cells are split across workers (`--dist load` does)."""
    cells = ["import os\nworker = os.environ['PYTEST_XDIST_WORKER']"] + ["assert worker"] * 5
    (tmp_path / "notebooks").mkdir()
    for name in ("first", "second", "third"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nbformat.write(notebook, tmp_path / "notebooks" / f"{name}.ipynb")
    e2e = tmp_path / "tests" / "e2e"
    e2e.mkdir(parents=True)
    for name in ("test_a.py", "test_b.py"):
        (e2e / name).write_text("import os\n\n\ndef test_worker():\n"
                                f"    open({str(tmp_path / 'e2e-workers')!r}, 'a').write(os.environ['PYTEST_XDIST_WORKER'])\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-n", "2", "--nbval-lax",
         "--nbval-current-env", "notebooks", "tests"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "20 passed" in result.stdout
    workers = (tmp_path / "e2e-workers").read_text()
    assert len(workers) == 2 * len("gw0") and workers[:3] == workers[3:], workers


def test_a_hub_run_keeps_the_kernel_environment_but_its_offline_and_progress_switches():
    from mmlab._kernel_env import HUB_UNSET, hub_kernel_environment

    hub = {"HF_ENDPOINT": "http://127.0.0.1:1", "MMLAB_MODE": "hub"}
    environment = hub_kernel_environment(hub, MMLAB_DEVICE="cuda")
    assert not set(HUB_UNSET) & set(environment)
    assert environment["MMLAB_MODE"] == "hub" and environment["HF_ENDPOINT"] == hub["HF_ENDPOINT"]
    assert environment["MMLAB_DEVICE"] == "cuda" and environment["PYTHONHASHSEED"] == KERNEL_ENVIRONMENT["PYTHONHASHSEED"]
