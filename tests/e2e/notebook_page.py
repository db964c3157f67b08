"""A notebook in JupyterLab, as a learner's browser shows it: open it, Run All Cells, read what the page shows.

`load_lab` loads JupyterLab in a Playwright page; `NotebookTab` opens a notebook in a tab of it, runs every cell
from the Run menu and reads the result into a `RunReport` (error outputs, widgets that failed to render, images,
open dialogs); `NotebookBatch` runs several notebooks at once, one tab each. The page's state is read through
`window.jupyterapp` (JupyterLab's `expose_app_in_browser` switch) by the functions in js/; every action (opening,
running, typing, clicking) goes through the page itself. What the runs took and the screenshots they left are
recorded in a `RunLog`, which the fixtures keep for the session's summary.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab_server import REPO, LabServer, write_notebook

SCRIPTS = Path(__file__).resolve().parent / "js"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}
WIDGET_FAILURES = ("Error displaying widget", "Error rendering output item", "Could not render content")


@functools.cache
def page_function(name: str) -> str:
    """The JavaScript function in js/<name>.js, for `page.evaluate` (its leading // comment lines left out)."""
    lines = (SCRIPTS / f"{name}.js").read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("//"))


@dataclass
class RunLog:
    """What this session's notebook runs left for the summary at its end."""

    seconds: dict[str, float] = field(default_factory=dict)  # notebook -> Run All Cells to the end of its run
    screenshots: list[Path] = field(default_factory=list)


@dataclass
class RunReport:
    """What the page shows after running every cell of a notebook."""

    name: str
    cells: list[dict]
    images: list[dict]
    widget_failures: list[dict]
    dialogs: list[str]
    seconds: float

    def errors(self) -> list[str]:
        """Error outputs (ename: evalue) of cells not tagged `raises-exception`, as readable lines."""
        lines = []
        for cell in self.cells:
            if "raises-exception" in cell["tags"]:
                continue
            for output in cell["outputs"]:
                if output["type"] == "error":
                    lines.append(f"cell {cell['index']} ({_first_line(cell['source'])}): "
                                 f"{output['ename']}: {output['evalue']}")
        return lines

    def not_run(self) -> list[str]:
        return [f"cell {cell['index']} ({_first_line(cell['source'])})" for cell in self.cells
                if cell["type"] == "code" and cell["source"].strip() and cell["count"] is None]

    def stderr(self) -> list[str]:
        """Text written to stderr (library warnings): reported, not failed on."""
        return [f"cell {cell['index']}: {output['text'].strip()[:300]}" for cell in self.cells
                for output in cell["outputs"] if output["type"] == "stream" and output["name"] == "stderr"]

    def problems(self) -> list[str]:
        problems = [f"error output in {line}" for line in self.errors()]
        problems += [f"widget failed to render in cell {item['cell']}: {item['text']}" for item in self.widget_failures]
        problems += [f"dialog open on the page: {text}" for text in self.dialogs]
        if not problems:  # cells after an error never run; say so only when nothing else explains it
            problems += [f"never executed: {cell}" for cell in self.not_run()]
        return problems

    def assert_clean(self) -> None:
        problems = self.problems()
        if problems:
            stderr = "\n".join(self.stderr()) or "(none)"
            raise AssertionError(f"{self.name}: the page shows {len(problems)} problem(s) after Run All Cells:\n  "
                                 + "\n  ".join(problems) + f"\nstderr output of the run:\n{stderr}")

    def assert_images(self, minimum: int = 1) -> None:
        """At least `minimum` images in output areas, each one decoded with a non-zero size."""
        broken = [image for image in self.images if not (image["complete"] and image["width"] > 0)]
        assert len(self.images) >= minimum and not broken, (
            f"{self.name}: expected at least {minimum} rendered figure(s) in the outputs, found {len(self.images)} "
            f"image(s), {len(broken)} of them not rendered (zero natural width): {self.images}")


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() and not line.startswith("#")] or [""]
    return lines[0][:80]


def load_lab(page, server: LabServer, *, timeout: float = 90) -> list[str]:
    """Load JupyterLab (an empty workspace) in `page`; return the list that records the page's browser dialogs.

    Every alert/confirm/prompt is recorded there and dismissed, so a script injected into the page shows up.
    """
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{server.base_url}lab?token={server.token}", wait_until="domcontentloaded", timeout=timeout * 1000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout * 1000)
    page.evaluate("async () => { await window.jupyterapp.restored; window.jupyterapp.shell.collapseLeft(); }")
    return dialogs


class NotebookTab:
    """One notebook in a JupyterLab page (several notebooks can share the page, each in its own tab)."""

    def __init__(self, page, server: LabServer, path: str, dialogs: list[str], log: RunLog):
        self.page, self.server, self.path = page, server, path
        self.name = Path(path).stem
        self.dialogs = dialogs  # the page's, from load_lab()
        self.log = log
        self.report: RunReport | None = None
        self._started: float | None = None

    @property
    def panel(self):
        """The notebook's panel on the page, as a Playwright locator."""
        panel_id = self.page.evaluate(page_function("panel_id"), self.path)
        return self.page.locator(f'[id="{panel_id}"]')

    def open(self) -> None:
        """Open the notebook in a new tab of the page (File > Open, as a command); its kernel starts."""
        self.page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path}).then(() => null)",
                           self.path)

    def activate(self) -> None:
        """Bring the notebook's tab to the front."""
        self.page.evaluate(page_function("activate"), self.path)

    def run_all(self, *, timeout: float = 300) -> RunReport:
        """Run every cell from the Run menu, wait until execution finishes, and report what the page shows."""
        self.start_run()
        return self.wait_run(timeout=timeout)

    def start_run(self, *, timeout: float = 90) -> None:
        """Once the kernel is idle, bring the notebook to the front and choose Run > Run All Cells."""
        self.wait_for_kernel("idle", timeout)
        self.activate()
        self._started = time.monotonic()
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()

    def wait_run(self, *, timeout: float = 300) -> RunReport:
        """Wait until every cell ran (or one failed) and the kernel is idle; then read the page."""
        if self.report is not None:
            return self.report
        assert self._started is not None, "start_run() first"
        settled, state = 0, None
        while settled < 2:  # the same finished state seen twice, half a second apart
            state = self.page.evaluate(page_function("run_state"), self.path)
            finished = (state["kernel"] == "idle" and not state["running"]
                        and (state["ran"] == state["code"] or state["errors"] > 0))
            if state["kernel"] in ("dead", "unknown", "no kernel"):
                break
            settled = settled + 1 if finished else 0
            if time.monotonic() - self._started > timeout:
                raise AssertionError(f"{self.name}: Run All Cells did not finish within {timeout:.0f} s; "
                                     f"kernel {state['kernel']}, {state['ran']} of {state['code']} code cells ran, "
                                     f"cells still running or queued: {state['running']}")
            time.sleep(0.5)
        seconds = time.monotonic() - self._started
        self.page.wait_for_function(  # figures are data URLs: give the browser a moment to decode them
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output img')).every(i => i.complete)",
            timeout=10_000)
        raw = self.page.evaluate(page_function("report"), {"path": self.path, "failures": list(WIDGET_FAILURES)})
        report = RunReport(self.name, raw["cells"], raw["images"], raw["widgetFailures"], raw["dialogs"], seconds)
        if state["kernel"] != "idle":
            report.dialogs.append(f"kernel is {state['kernel']} after the run")
        self.report = report
        self.log.seconds[self.name] = seconds
        return report

    def screenshot(self, name: str | None = None, folder: Path = SCREENSHOTS) -> Path:
        """A screenshot of the whole notebook panel (the viewport is made as tall as the notebook)."""
        self.activate()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name or self.name}.png"
        # The notebook scrolls inside its panel: grow the viewport by what is hidden below the panel's fold.
        hidden = self.page.evaluate(page_function("hidden_height"), self.path)
        viewport = self.page.viewport_size
        height = min(viewport["height"] + max(hidden, 0) + 40, 16_000)
        self.page.set_viewport_size({"width": viewport["width"], "height": height})
        try:
            self.page.wait_for_timeout(300)
            self.panel.screenshot(path=str(target))
        finally:
            self.page.set_viewport_size(viewport)
        self.log.screenshots.append(target)
        return target

    def shutdown_kernel(self) -> None:
        """Ask the server to shut the kernel down, without waiting (the server stops any kernel left at the end)."""
        if not self.page.is_closed():
            self.page.evaluate(page_function("shutdown_kernel"), self.path)

    def wait_for_kernel(self, wanted: str, timeout: float) -> None:
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            state = self.page.evaluate(page_function("kernel_state"), self.path)
            if state == wanted:
                return
            time.sleep(0.3)
        dialogs = self.page.locator(".jp-Dialog").all_inner_texts()
        raise AssertionError(f"{self.name}: the kernel was not {wanted} within {timeout:.0f} s (last state: {state}); "
                             f"dialogs on the page: {dialogs or 'none'}\nserver log:\n{self.server.log_tail(1500)}")


class NotebookBatch:
    """Notebooks run at the same time, each in a tab of one JupyterLab page, so their kernels' work overlaps.

    `wanted` maps a path under the server's root to None (a notebook already there) or to the code cells of a
    scratch notebook to write first. A notebook that fails to open or start raises in `finish`, not for the others.
    One page loads JupyterLab once (about 4 s of CPU per page load here) instead of once per notebook.
    """

    def __init__(self, browser, server: LabServer, wanted: dict[str, list[str] | None], log: RunLog):
        self.browser, self.server, self.wanted, self.log = browser, server, wanted, log
        self.tabs: dict[str, NotebookTab] = {}
        self.failures: dict[str, Exception] = {}
        self._context = None

    def start(self) -> None:
        self._context = self.browser.new_context(viewport=VIEWPORT)
        page = self._context.new_page()
        page.set_default_timeout(30_000)
        dialogs = load_lab(page, self.server)
        for path, cells in self.wanted.items():
            if cells is not None:
                write_notebook(self.server.root / path, cells)
            self.tabs[path] = NotebookTab(page, self.server, path, dialogs, self.log)
        for step in (NotebookTab.open, NotebookTab.start_run):  # every kernel starts, then each notebook runs
            for path, tab in self.tabs.items():
                if path not in self.failures:
                    try:
                        step(tab)
                    except Exception as error:  # noqa: BLE001 - raised again by finish() for this notebook's test
                        self.failures[path] = error

    def finish(self, path: str, *, timeout: float = 300) -> NotebookTab:
        """The notebook's tab once its run has finished (its `report` filled in), brought to the front."""
        if path in self.failures:
            raise self.failures[path]
        tab = self.tabs[path]
        tab.wait_run(timeout=timeout)
        tab.activate()
        return tab

    def close(self) -> None:
        for tab in self.tabs.values():
            try:
                tab.shutdown_kernel()
            except Exception:  # noqa: BLE001, S110 - the server's shutdown stops any kernel left
                pass
        if self._context is not None:
            self._context.close()
