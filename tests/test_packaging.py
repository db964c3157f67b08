"""Packaging: pyproject.toml and environment.yml agree, no exact pins, the wheel carries the checkpoints."""

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONDA_TO_PYPI = {"pytorch": "torch", "open-clip-torch": "open_clip_torch"}
NOT_PACKAGES = {"python", "pip"}


def pyproject_requirements() -> dict[str, SpecifierSet]:
    project = PYPROJECT["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r.specifier for r in requirements if canonicalize_name(r.name) != "mmlab"}


def conda_requirements() -> dict[str, SpecifierSet]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    found = {}
    for entry in environment["dependencies"]:
        if not isinstance(entry, str):
            continue  # the pip: section (installs mmlab itself)
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry).groups()
        if name not in NOT_PACKAGES:
            found[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = SpecifierSet(spec.replace(" ", ""))
    return found


def test_environment_yml_and_pyproject_agree_on_packages_and_bounds():
    pip, conda = pyproject_requirements(), conda_requirements()
    only_pip = sorted(set(pip) - set(conda))
    only_conda = sorted(set(conda) - set(pip))
    differ = {name: (str(pip[name]), str(conda[name])) for name in set(pip) & set(conda) if pip[name] != conda[name]}
    assert (only_pip, only_conda, differ) == ([], [], {}), (
        f"only in pyproject.toml: {only_pip}; only in environment.yml: {only_conda}; "
        f"different bounds (pyproject, environment.yml): {differ}")


def test_environment_yml_installs_mmlab_itself_and_a_supported_python():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert pip_sections == [["-e ."]]
    python = next(e for e in environment["dependencies"] if isinstance(e, str) and e.startswith("python"))
    assert python.replace(" ", "") == "python" + PYPROJECT["project"]["requires-python"]


def test_no_exact_pins_and_only_lower_bounds_for_colab():
    for name, specifier in pyproject_requirements().items():
        for spec in specifier:
            assert spec.operator in (">=", "<"), f"{name}{specifier}: use lower bounds (and at most a major cap)"
    core = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert not core & {"jupyterlab", "notebook", "jupyter", "pytest", "nbval"}, "tools belong in the extras"
    assert pyproject_requirements()["transformers"] == SpecifierSet(">=5.0,<6")


def test_nbgrader_comes_with_the_course_and_test_extras_only():
    extras = PYPROJECT["project"]["optional-dependencies"]
    with_nbgrader = {name for name, lines in extras.items()
                     if any(canonicalize_name(Requirement(line).name) == "nbgrader" for line in lines)}
    assert with_nbgrader == {"course", "test"}  # a learner's install (no extra, or lab) never pulls it
    assert not any(canonicalize_name(Requirement(r).name) == "nbgrader" for r in PYPROJECT["project"]["dependencies"])


def test_checkpoints_are_package_data():
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["mmlab"] == ["checkpoints/**/*"]


@pytest.mark.skipif(not os.environ.get("CI"), reason="builds a wheel (network for the build backend): CI only")
def test_the_wheel_carries_the_checkpoints_and_nothing_outside_mmlab(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=600)
    [wheel] = tmp_path.glob("mmlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for kind in ("clip", "blip2"):
        on_disk = {p.name for p in (ROOT / "mmlab" / "checkpoints" / kind).iterdir() if p.is_file()}
        in_wheel = {Path(n).name for n in names if n.startswith(f"mmlab/checkpoints/{kind}/")}
        assert on_disk and on_disk <= in_wheel
    assert all(n.startswith(("mmlab/", "mmlab-")) for n in names)


def test_workbook_and_ci_scripts_parse_and_are_executable():
    for script, shell in (("workbook", "sh"), (".ci/run", "bash")):
        path = ROOT / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        subprocess.run([shell, "-n", str(path)], check=True)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./workbook lab " in readme and "./workbook test " in readme
    assert "./workbook test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return module


def test_lowest_versions_pin_every_runtime_dependency_at_its_lower_bound():
    pins = dict(line.split("==") for line in _tool("lowest_versions").constraints())
    runtime = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
    assert set(pins) == {r.name for r in runtime} - {"torch", "torchvision"}
    for r in runtime:
        if r.name in pins:
            assert pins[r.name] in r.specifier and f">={pins[r.name]}" in str(r.specifier), (r, pins[r.name])
    assert "ipywidgets==7.7.1" in _tool("lowest_versions").constraints(), "Colab's ipywidgets must stay tested"


def test_colab_preinstalled_versions_are_inside_the_declared_range():
    """The install cell adds mmlab without -U: nothing that Colab preinstalls may need an upgrade."""
    colab = _tool("versions_table").COLAB
    runtime = {Requirement(line).name: Requirement(line).specifier for line in PYPROJECT["project"]["dependencies"]}
    assert set(colab) == set(runtime)
    outside = {name: (version, str(runtime[name])) for name, version in colab.items()
               if version is not None and version not in runtime[name]}
    assert outside == {}, f"Colab's preinstalled versions outside pyproject.toml's range: {outside}"


def test_supported_versions_table_matches_pyproject():
    table = (ROOT / "docs" / "versions.md").read_text(encoding="utf-8")
    for line in PYPROJECT["project"]["dependencies"]:
        r = Requirement(line)
        assert f"| {r.name} | {r.specifier} |" in table, f"docs/versions.md is stale for {r}: run tools/versions_table.py"
    assert "./workbook test-lowest" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
