"""Settings for the whole suite: the notebooks' kernel environment, the quick tier, the few-steps switch.

nbval runs every notebook offline on the embedded default, on the CPU. The committed outputs come from
`./workbook refresh` (tools/refresh_notebooks.py), which executes the notebooks in the same KERNEL_ENVIRONMENT
(mmlab/_kernel_env.py), so the mode banner and every model output compare equal on any machine, with or without
internet or a GPU. (This file sits at the root, not in notebooks/, to keep the learners' folder free of test
plumbing.)

`--quick` is the edit loop's tier: the tests not marked `slow`, and each notebook up to its `mmlab.setup()` cell.
`--lesson-steps=N` runs the training lessons with N steps, for runs that do not compare outputs (`--nbval-lax`).
"""

import os
import signal
from pathlib import Path
from unittest import mock

import pytest

from mmlab._kernel_env import KERNEL_ENVIRONMENT, TRAINING_LESSONS, few_steps

TOOLS = Path(__file__).resolve().parent / "tools"


def pytest_addoption(parser):
    group = parser.getgroup("mmlab")
    group.addoption("--quick", action="store_true",
                    help="the edit loop's tier: skip tests marked slow, run each notebook up to its setup() cell")
    group.addoption("--lesson-steps", type=int, default=None, metavar="N",
                    help="run the training lessons with N steps (only with --nbval-lax: their outputs then differ)")


def pytest_configure(config):
    """nbval's sanitize patterns (memory addresses), wherever pytest is started from; SIGTERM unwinds like Ctrl-C."""
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = str(TOOLS / "nbval_sanitize.cfg")
    if config.getoption("lesson_steps") is not None and not config.getoption("nbval_lax", False):
        raise pytest.UsageError("--lesson-steps changes the training lessons' outputs: use it with --nbval-lax")
    # A CI timeout sends SIGTERM: raise KeyboardInterrupt instead of dying, so fixtures stop their servers and kernels.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def _is_notebook(item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_collection_modifyitems(config, items):
    """`--lesson-steps` shortens the training lessons; `--quick` keeps the quick tier's items."""
    steps = config.getoption("lesson_steps")
    if steps is not None:
        for notebook in {item.parent for item in items if _is_notebook(item) and item.path.stem in TRAINING_LESSONS}:
            few_steps([child.cell for child in items if child.parent is notebook], steps, name=notebook.path.name,
                      why="--lesson-steps")
    if config.getoption("quick"):
        kept, dropped, setup_seen = [], [], set()
        for item in items:
            if _is_notebook(item):
                keep = item.parent not in setup_seen
                if "setup(" in item.cell.source:
                    setup_seen.add(item.parent)
            else:
                keep = item.get_closest_marker("slow") is None and item.get_closest_marker("e2e") is None
            (kept if keep else dropped).append(item)
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while setting up its first cell: start it in the offline environment."""
    if not _is_notebook(item):
        yield
        return
    with mock.patch.dict(os.environ, KERNEL_ENVIRONMENT):  # the whole environment put back after the kernel started
        yield
