"""nbval settings for the notebooks: every kernel runs offline on the embedded default, like the committed outputs.

The committed outputs come from `./workbook refresh` (tools/refresh_notebooks.py), which executes the
notebooks with the same KERNEL_ENVIRONMENT, so the mode banner and every model output compare equal on
any machine, with or without internet.
"""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SANITIZE = HERE / "nbval_sanitize.cfg"
sys.path.insert(0, str(HERE.parent / "tools"))  # tools/ is not a package


def pytest_configure(config):
    """Use the sanitize patterns of this folder, wherever pytest is started from."""
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = str(SANITIZE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while setting up its first cell: start it in the offline environment."""
    from refresh_notebooks import KERNEL_ENVIRONMENT

    saved = {name: os.environ.get(name) for name in KERNEL_ENVIRONMENT}
    os.environ.update(KERNEL_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
