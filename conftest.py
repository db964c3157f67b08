"""Settings for the notebook tests: nbval runs every notebook offline on the embedded default, on the CPU.

The committed outputs come from `./workbook refresh` (tools/refresh_notebooks.py), which executes the
notebooks in the same KERNEL_ENVIRONMENT (mmlab/_kernel_env.py), so the mode banner and every model output
compare equal on any machine, with or without internet or a GPU. (This file sits at the root, not in
notebooks/, to keep the learners' folder free of test plumbing.)
"""

import os
from pathlib import Path
from unittest import mock

import pytest

from mmlab._kernel_env import KERNEL_ENVIRONMENT

TOOLS = Path(__file__).resolve().parent / "tools"


def pytest_configure(config):
    """nbval's sanitize patterns (memory addresses), wherever pytest is started from."""
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = str(TOOLS / "nbval_sanitize.cfg")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while setting up its first cell: start it in the offline environment."""
    if item.path.suffix != ".ipynb":
        yield
        return
    with mock.patch.dict(os.environ, KERNEL_ENVIRONMENT):  # the whole environment put back after the kernel started
        yield
