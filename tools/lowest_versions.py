"""The lowest versions that mmlab declares: pip constraints for a lowest-versions test run.

    python tools/lowest_versions.py            # print `name==lower-bound` for each runtime dependency

`./workbook test-lowest` installs mmlab with these constraints into a second virtual environment and runs the
unit tests and every notebook there, so a lower bound in pyproject.toml that no longer holds fails a test
instead of a learner's install. torch and torchvision are not lowered: their lowest releases are multi-gigabyte
CUDA downloads that this project's machines cannot take on every run; the run keeps the torch already installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOT_LOWERED = {"torch", "torchvision"}


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(line) for line in project["dependencies"]]


def lower_bound(requirement: Requirement) -> str:
    """The version in the requirement's `>=` clause (every runtime dependency must have one)."""
    bounds = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    if len(bounds) != 1:
        raise ValueError(f"{requirement}: a runtime dependency needs exactly one '>=' lower bound")
    return bounds[0]


def constraints() -> list[str]:
    return [f"{r.name}=={lower_bound(r)}" for r in runtime_requirements() if r.name not in NOT_LOWERED]


if __name__ == "__main__":
    sys.stdout.write("".join(line + "\n" for line in constraints()))
