"""Fixtures of the browser tests: one JupyterLab server and one headless Chromium for the session.

The notebooks that the selected tests name run all at once, each in a tab of one JupyterLab page, from the first
test on; each test waits only for its own notebook.

Everything skips, with a message saying how to enable it, where Chromium or Playwright is missing (or fails, where
MMLAB_E2E_REQUIRED=1 says the browser tests must run, as in CI). The server and
the browser are stopped in `finally` blocks, also when a test fails or is interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness module, under any --import-mode

from e2e_lab import (
    CHROMIUM_ARGS,
    RUN_SCREENSHOTS,
    RUN_SECONDS,
    SCREENSHOTS,
    LabServer,
    NotebookBatch,
    NotebookTab,
    chromium_path,
    missing_requirements,
    prepare_root,
    start_lab,
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: end-to-end tests of the notebooks in JupyterLab and headless Chromium (need chromium and "
                   "playwright; deselect with -m 'not e2e')")
    config.addinivalue_line(
        "markers", "e2e_notebook(path, cells=None): the notebook (under the server's root) an e2e test runs in the "
                   "browser; `cells` writes a scratch notebook there first")


def pytest_terminal_summary(terminalreporter):
    if RUN_SECONDS:
        terminalreporter.write_sep("-", "e2e runs")
        terminalreporter.write_line("Run All Cells to finished, all notebooks at once: " + ", ".join(
            f"{name} {seconds:.0f} s" for name, seconds in RUN_SECONDS.items()))
    if RUN_SCREENSHOTS:
        terminalreporter.write_sep("-", "e2e screenshots")
        terminalreporter.write_line(f"{len(RUN_SCREENSHOTS)} screenshot(s) of the notebooks after their run in "
                                    f"{SCREENSHOTS}:")
        for path in RUN_SCREENSHOTS:
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
    batch = NotebookBatch(browser, lab, wanted)
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
