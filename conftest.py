"""Settings for the whole suite: the notebooks' kernel environment, the quick tier, the few-steps switch.

nbval runs every notebook offline on the embedded default, on the CPU. The committed outputs come from
`./workbook refresh` (tools/refresh_notebooks.py), which executes the notebooks in the same KERNEL_ENVIRONMENT
(mmlab/_kernel_env.py), so the mode banner and every model output compare equal on any machine, with or without
internet or a GPU. (This file sits at the root, not in notebooks/, to keep the learners' folder free of test
plumbing.)

`--quick` is the edit loop's tier: the tests not marked `slow`, and each notebook up to its `mmlab.setup()` cell.
`--lesson-steps=N` runs the training lessons with N steps, for runs that do not compare outputs (`--nbval-lax`).
`--hub` runs the notebooks in hub mode against a Hub on loopback (tools/loopback_hub.py) that serves the tiny
stand-ins of the chapter's repos (tools/stand_ins.py), from an empty Hugging Face cache, so every download, image
fetch and hub branch runs as in Colab; with `--nbval-lax` (hub outputs differ from the committed offline ones).

On several cores (`./workbook test` passes pytest-xdist's `-n`), a worker takes a whole file at a time: every cell of
a notebook runs in the one kernel nbval started for it, and the browser tests (tests/e2e, one JupyterLab and one
Chromium for all their files) count as one file. The costliest parts (COSTLIEST_FIRST) are handed out first, so
the last part to finish is a short one. benchmarks/suite_time.py measures what each part costs.
"""

import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest

from mmlab._kernel_env import HUB_UNSET, KERNEL_ENVIRONMENT, TRAINING_LESSONS, few_steps, hub_kernel_environment

TOOLS = Path(__file__).resolve().parent / "tools"
# Path prefixes of the parts that take longest (benchmarks/suite_time.py), in the order a worker should start them.
COSTLIEST_FIRST = ("tests/e2e/", "notebooks/07_", "tests/test_course.py", "notebooks/06_", "tests/test_train.py",
                   "notebooks/01_", "notebooks/04_", "tests/test_notebook_harness.py")


def pytest_addoption(parser):
    group = parser.getgroup("mmlab")
    group.addoption("--quick", action="store_true",
                    help="the edit loop's tier: skip tests marked slow, run each notebook up to its setup() cell")
    group.addoption("--lesson-steps", type=int, default=None, metavar="N",
                    help="run the training lessons with N steps (only with --nbval-lax: their outputs then differ)")
    group.addoption("--hub", action="store_true",
                    help="run the notebooks in hub mode against a loopback Hub serving stand-in repos (with --nbval-lax)")


def pytest_configure(config):
    """nbval's sanitize patterns (memory addresses), wherever pytest is started from; SIGTERM unwinds like Ctrl-C."""
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = str(TOOLS / "nbval_sanitize.cfg")
    if config.getoption("lesson_steps") is not None and not config.getoption("nbval_lax", False):
        raise pytest.UsageError("--lesson-steps changes the training lessons' outputs: use it with --nbval-lax")
    if config.getoption("hub"):
        if not config.getoption("nbval_lax", False):
            raise pytest.UsageError("--hub runs the notebooks in hub mode, whose outputs differ: use it with --nbval-lax")
        if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
            config.stash[HUB_KEY] = _start_hub()  # where the notebooks run: each worker, not xdist's controller
    # A CI timeout sends SIGTERM: raise KeyboardInterrupt instead of dying, so fixtures stop their servers and kernels.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    share_the_cores(config)


def share_the_cores(config) -> None:
    """An xdist worker, its kernels and its subprocesses get their share of the cores as math threads.

    Each torch process otherwise starts one thread per core: two workers and their kernels on two cores then
    spin-wait for each other (measured here: a 19 s training test took 412 s). Set before torch is imported; a
    value the user set wins.
    """
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)


HUB_KEY = pytest.StashKey()  # (what stops the Hub and removes its cache, the kernels' environment)


def _start_hub() -> tuple[contextlib.ExitStack, dict[str, str]]:
    """The loopback Hub and the kernels' environment for it (an empty Hugging Face cache of its own)."""
    sys.path.insert(0, str(TOOLS))
    from loopback_hub import LoopbackHub
    from stand_ins import build

    with contextlib.ExitStack() as stack:
        hub = stack.enter_context(LoopbackHub(build("tiny")))
        cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="mmlab-hub-cache-"))
        environment = hub_kernel_environment(hub.environment(), HF_HOME=cache)
        return stack.pop_all(), environment


def pytest_unconfigure(config):
    if HUB_KEY in config.stash:
        config.stash[HUB_KEY][0].close()


def _is_notebook(item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_collection_modifyitems(config, items):
    """The costliest parts first; `--lesson-steps` shortens the training lessons; `--quick` keeps the quick tier."""
    items.sort(key=lambda item: cost_rank(part_of(item.nodeid)))  # stable: a notebook's cells keep their order
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


def part_of(nodeid: str) -> str:
    """The unit one worker runs whole: a test file or a notebook; all of tests/e2e is one unit."""
    path = nodeid.split("::", 1)[0]
    return "tests/e2e/" if path.startswith("tests/e2e/") else path


def cost_rank(part: str) -> int:
    """The part's place in COSTLIEST_FIRST; every other part after them, in collection order."""
    return next((i for i, prefix in enumerate(COSTLIEST_FIRST) if part.startswith(prefix)), len(COSTLIEST_FIRST))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's by-file scheduling, with tests/e2e as one unit and the costliest units first."""
    from xdist.scheduler import LoadScopeScheduling

    class ByPart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return part_of(nodeid)

    config.option.loadscopereorder = False  # keep the collection's order: costliest first (pytest_collection_modifyitems)
    return ByPart(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while setting up its first cell: start it in the offline (or --hub) environment."""
    if not _is_notebook(item):
        yield
        return
    hub = item.config.stash.get(HUB_KEY, None)
    with mock.patch.dict(os.environ, hub[1] if hub else KERNEL_ENVIRONMENT):  # all put back once the kernel started
        for name in HUB_UNSET if hub else ():
            os.environ.pop(name, None)
        yield
