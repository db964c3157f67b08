"""`./workbook`, the one entry point: paths, interpreters, the install stamp and what each task installs.

The tests run the real script with a stand-in virtual environment: its `bin/python` runs this interpreter, but
records `python -m pip ...` calls in pip.log instead of installing, so each test sees what the script would install
and runs in a second or two.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKBOOK = ROOT / "workbook"
STAND_IN_PYTHON = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = pip ]; then echo "$*" >>"$(dirname "$0")/../pip.log"; exit 0; fi
exec {python} "$@"
"""


def stand_in_venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(STAND_IN_PYTHON.format(python=sys.executable))
    python.chmod(0o755)
    return folder


def pip_calls(venv: Path) -> list[str]:
    log = venv / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


def workbook(*args: str, cwd: Path, script: Path = WORKBOOK, **environment: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "MMLAB_VENV"} | environment
    return subprocess.run(["sh", str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_a_relative_venv_is_taken_from_the_callers_folder_and_doctor_installs_only_the_base_package(tmp_path):
    venv = stand_in_venv(tmp_path / "myenv")
    result = workbook("doctor", "--help", cwd=tmp_path, MMLAB_VENV="myenv")
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
    [install] = pip_calls(venv)
    assert install.split()[-1] == str(ROOT), install  # `-e ROOT`: no [test] extra (JupyterLab, nbgrader, ...)


def test_the_stamp_skips_a_second_install_but_not_one_from_another_checkout(tmp_path):
    venv = stand_in_venv(tmp_path / "venv")
    assert workbook("setup", "test", cwd=ROOT, MMLAB_VENV=str(venv)).returncode == 0
    assert workbook("setup", "test", cwd=ROOT, MMLAB_VENV=str(venv)).returncode == 0
    assert len(pip_calls(venv)) == 1  # the stamp, and mmlab importing from this checkout, made the second a no-op
    clone = tmp_path / "clone"  # the same pyproject.toml in another checkout: the venv's mmlab is not that one
    clone.mkdir()
    for name in ("workbook", "pyproject.toml"):
        shutil.copy(ROOT / name, clone / name)
    assert workbook("setup", "test", cwd=clone, script=clone / "workbook", MMLAB_VENV=str(venv)).returncode == 0
    assert len(pip_calls(venv)) == 2 and pip_calls(venv)[1].split()[-1] == f"{clone}[test]"


@pytest.mark.slow
def test_an_interpreter_that_does_not_run_is_passed_over(tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3", "python3.13"):  # a version manager's shims, with no version behind them
        (shims / name).write_text("#!/bin/sh\necho 'pyenv: command not found' >&2\nexit 127\n")
        (shims / name).chmod(0o755)
    (shims / "python3.12").symlink_to(sys.executable)
    venv = tmp_path / "venv"
    no_packages = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}  # the install that follows fails at once
    result = workbook("setup", "test", cwd=tmp_path, MMLAB_VENV=str(venv), PATH=f"{shims}:/usr/bin:/bin", **no_packages)
    assert f"creating {venv} with Python {sys.version.split()[0]}" in result.stdout, result.stdout + result.stderr


def test_no_suitable_python_is_a_clear_error(tmp_path):
    result = workbook("setup", "test", cwd=tmp_path, MMLAB_VENV=str(tmp_path / "venv"), PYTHON="python2.1")
    assert result.returncode == 1
    assert "PYTHON=python2.1 not found: point it at Python 3.10 or newer" in result.stderr


@pytest.mark.slow
def test_the_lowest_versions_tool_runs_on_python_3_10_with_what_the_workbook_installs_first(tmp_path):
    found = [shutil.which("python3.10"), *map(str, Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    runs = [p for p in found if p and subprocess.run([p, "-V"], capture_output=True, check=False).returncode == 0]
    if not runs:
        pytest.skip("no Python 3.10 on this machine")
    python310 = runs[0]
    [tools] = re.findall(r'^LOWEST_TOOLS="(.*)"$', WORKBOOK.read_text(), re.MULTILINE)
    subprocess.run([python310, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *tools.split()],
                   check=True, timeout=300)
    result = subprocess.run([python, ROOT / "tools" / "lowest_versions.py"], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "transformers==5.0" in result.stdout.split()


def test_help_lists_every_task():
    out = workbook("help", cwd=ROOT).stdout
    tasks = re.findall(r"^(\w[\w-]*)\)$", WORKBOOK.read_text(), re.MULTILINE)
    assert {"lab", "test", "test-lowest", "setup", "refresh", "doctor", "course"} <= set(tasks)
    for task in tasks:
        assert f"./workbook {task}" in out, task
