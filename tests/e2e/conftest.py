"""Fixtures of the browser tests: one JupyterLab server and one headless Chromium for the session.

The notebooks that the selected tests name run all at once, each in a tab of one JupyterLab page, from the first
test on; each test waits only for its own notebook. What the runs took and the screenshots they left are kept in
the session's RunLog (`config.stash`) and listed at the end.

Everything skips, with a message saying how to enable it, where Chromium or Playwright is missing (or fails, where
MMLAB_E2E_REQUIRED=1 says the browser tests must run, as in CI). The server and
the browser are stopped in `finally` blocks, also when a test fails or is interrupted.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness modules, under any --import-mode

from lab_server import LabServer, prepare_root, start_lab
from notebook_page import SCREENSHOTS, NotebookBatch, NotebookTab, RunLog

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
ENABLE_HINT = ("To enable the browser tests: `apt-get install -y chromium` (Debian's package, /usr/bin/chromium, or set "
               "MMLAB_E2E_CHROMIUM to a Chromium binary) and `pip install playwright` (no `playwright install`: "
               "the tests never download a browser).")
RUN_LOG = pytest.StashKey[RunLog]()


def chromium_path() -> str | None:
    """The Chromium binary the tests use: $MMLAB_E2E_CHROMIUM, /usr/bin/chromium, or `chromium` on the PATH."""
    for candidate in (os.environ.get("MMLAB_E2E_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_requirements() -> str | None:
    """Why the browser tests cannot run on this machine, or None when they can."""
    missing = []
    if chromium_path() is None:
        missing.append("Chromium")
    for module in ("playwright", "jupyterlab", "nbformat"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {module}")
    return f"{', '.join(missing)} not found. {ENABLE_HINT}" if missing else None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: end-to-end tests of the notebooks in JupyterLab and headless Chromium (need chromium and "
                   "playwright; deselect with -m 'not e2e')")
    config.addinivalue_line(
        "markers", "e2e_notebook(path, cells=None): the notebook (under the server's root) an e2e test runs in the "
                   "browser; `cells` writes a scratch notebook there first")
    config.stash[RUN_LOG] = RunLog()


def pytest_terminal_summary(terminalreporter):
    log = terminalreporter.config.stash[RUN_LOG]
    if log.seconds:
        terminalreporter.write_sep("-", "e2e runs")
        terminalreporter.write_line("Run All Cells to finished, all notebooks at once: " + ", ".join(
            f"{name} {seconds:.0f} s" for name, seconds in log.seconds.items()))
    if log.screenshots:
        terminalreporter.write_sep("-", "e2e screenshots")
        terminalreporter.write_line(f"{len(log.screenshots)} screenshot(s) of the notebooks after their run in "
                                    f"{SCREENSHOTS}:")
        for path in log.screenshots:
            terminalreporter.write_line(f"  {path}")


@pytest.fixture(scope="session")
def e2e_requirements():
    """Skip where Chromium or Playwright is missing; fail instead where MMLAB_E2E_REQUIRED=1 (CI)."""
    reason = missing_requirements()
    if reason and os.environ.get("MMLAB_E2E_REQUIRED") == "1":
        pytest.fail(f"MMLAB_E2E_REQUIRED=1, but the browser tests cannot run: {reason}", pytrace=False)
    if reason:
        pytest.skip(f"Browser tests skipped: {reason}")


@pytest.fixture(scope="session")
def lab(e2e_requirements, tmp_path_factory) -> LabServer:
    """JupyterLab serving stripped copies of notebooks/ (and any scratch notebook a test writes) from a temp root."""
    server = start_lab(prepare_root(tmp_path_factory.mktemp("e2e-lab")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(e2e_requirements):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def notebooks(lab, browser, request) -> NotebookBatch:
    """Every notebook the selected tests name (marker `e2e_notebook`), all running at once from the first use."""
    wanted = {}
    for item in request.session.items:
        marker = item.get_closest_marker("e2e_notebook")
        if marker is not None:
            wanted[marker.args[0]] = marker.kwargs.get("cells")
    batch = NotebookBatch(browser, lab, wanted, request.config.stash[RUN_LOG])
    try:
        batch.start()
        yield batch
    finally:
        batch.close()


@pytest.fixture
def notebook(notebooks, request) -> NotebookTab:
    """The tab of this test's notebook (marker `e2e_notebook(path)`), after Run All Cells finished in it."""
    marker = request.node.get_closest_marker("e2e_notebook")
    assert marker is not None, "mark the test with @pytest.mark.e2e_notebook(path)"
    tab = notebooks.finish(marker.args[0])
    try:
        yield tab
    finally:
        tab.shutdown_kernel()  # free its memory as soon as its test is done
