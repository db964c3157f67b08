"""Drive JupyterLab in headless Chromium the way a learner does: open a notebook, run all cells, read the page.

`LabServer` runs one JupyterLab on a free loopback port with a token, with its settings, workspaces, runtime and
config folders in a temporary root so no user state leaks in. `NotebookTab` opens a notebook, runs every cell from
the Run menu, and reports what the page shows: error outputs, widgets that failed to render, images, open dialogs.
`ChatBox` drives the `mmlab.chat.ChatWidget` view with the mouse and keyboard; `check_reply` turns what its
transcript shows after a question into a pass or a readable AssertionError.

The page's state (kernel status, cell outputs) is read through `window.jupyterapp` (JupyterLab's
`expose_app_in_browser` switch); every action (opening, running, typing, clicking) goes through the page itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
ENABLE_HINT = ("To enable the browser tests: `apt-get install -y chromium` (Debian's package, /usr/bin/chromium, or set "
               "MMLAB_E2E_CHROMIUM to a Chromium binary) and `pip install playwright` (no `playwright install`: "
               "the tests never download a browser).")
# The kernel of every notebook runs offline on the embedded default, as the committed outputs do. The notebooks
# run at the same time, so each kernel gets one math thread: measured here, 80 s for the suite instead of 100 s.
KERNEL_ENVIRONMENT = {
    "MMLAB_MODE": "offline",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# JupyterLab user settings: every cell attached to the page (the checks read the whole notebook), no news popup.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
SERVER_CONFIG = {"LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                            "extension_manager": "readonly", "expose_app_in_browser": True}}
WIDGET_FAILURES = ("Error displaying widget", "Error rendering output item", "Could not render content")


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


# Notebooks on disk


def prepare_root(root: Path) -> Path:
    """Copy notebooks/ into `root` with its outputs stripped, and write the server's config and lab settings.

    The copies are what the browser opens: JupyterLab's autosave never touches the committed notebooks, and
    every output the checks read was made by this run.
    """
    import nbformat

    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for path in (root / "notebooks").glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        notebook.metadata.pop("widgets", None)
        nbformat.write(notebook, path)
    for name, values in LAB_SETTINGS.items():
        target = root / ".lab" / "settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    (root / ".lab" / "config").mkdir(parents=True)
    (root / ".lab" / "config" / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    return root


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells, for scratch notebooks the tests generate."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


# The server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabServer:
    """A JupyterLab server serving `root`, in its own process group."""

    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_tail(self, characters: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the server (SIGTERM shuts its kernels down), then kill whatever of it or its kernels is left."""
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Kernels run in process groups of their own; their command lines name our runtime folder.
        for pid in processes_mentioning(str(self.root / ".lab" / "runtime")):
            _signal_group(pid, signal.SIGKILL)


def start_lab(root: Path, *, timeout: float = 90) -> LabServer:
    """Start JupyterLab on a free loopback port and wait until it answers."""
    lab = root / ".lab"
    environment = {**os.environ, **KERNEL_ENVIRONMENT,
                   "JUPYTER_CONFIG_DIR": str(lab / "config"), "JUPYTER_DATA_DIR": str(lab / "data"),
                   "JUPYTER_RUNTIME_DIR": str(lab / "runtime"), "IPYTHONDIR": str(lab / "ipython"),
                   "JUPYTERLAB_SETTINGS_DIR": str(lab / "settings"),
                   "JUPYTERLAB_WORKSPACES_DIR": str(lab / "workspaces"), "JUPYTER_PLATFORM_DIRS": "1"}
    environment.pop("JUPYTER_TOKEN", None)
    port, token = free_port(), secrets.token_hex(16)
    log = lab / "server.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False"]
    if os.geteuid() == 0:  # containers and CI runners
        command.append("--allow-root")
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, env=environment, cwd=root, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(root, port, token, process, log)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {process.returncode} while starting:\n"
                                   f"{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.base_url}api/status?token={token}", timeout=2):
                    return server
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.3)
    except BaseException:
        server.stop()
        raise


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line contains `text` (this process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command_line:
            found.append(int(entry.name))
    return found


# The notebook page

_FIND_PANEL = """
const app = window.jupyterapp;
const panel = app && Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
"""
_KERNEL_STATE = "(path) => {" + _FIND_PANEL + """
if (!app) return 'loading JupyterLab';
if (!panel) return 'opening the notebook';
const session = panel.sessionContext.session;
if (!session || !session.kernel) return panel.sessionContext.isReady ? 'no kernel' : 'starting the kernel';
return session.kernel.status;
}"""
_RUN_STATE = "(path) => {" + _FIND_PANEL + """
const session = panel.sessionContext.session;
const state = {kernel: session && session.kernel ? session.kernel.status : 'no kernel',
               code: 0, ran: 0, running: [], errors: 0};
panel.content.widgets.forEach((cell, index) => {
  if (cell.model.type !== 'code' || !cell.model.sharedModel.getSource().trim()) return;
  state.code += 1;
  if (cell.model.executionCount !== null) state.ran += 1;
  const prompt = cell.node.querySelector('.jp-InputArea-prompt');
  if (cell.model.executionState === 'running' || (prompt && prompt.textContent.includes('*')))
    state.running.push(index);
  for (let i = 0; i < cell.model.outputs.length; i++)
    if (cell.model.outputs.get(i).type === 'error') state.errors += 1;
});
return state;
}"""
_REPORT = "(path) => {" + _FIND_PANEL + """
const cells = panel.content.widgets.map((cell, index) => {
  const outputs = [];
  if (cell.model.type === 'code')
    for (let i = 0; i < cell.model.outputs.length; i++) {
      const o = cell.model.outputs.get(i).toJSON();
      outputs.push({type: o.output_type, ename: o.ename || '', evalue: o.evalue || '', name: o.name || '',
                    text: (Array.isArray(o.text) ? o.text.join('') : (o.text || '')).slice(0, 2000),
                    mimes: Object.keys(o.data || {})});
    }
  return {index, type: cell.model.type, source: cell.model.sharedModel.getSource(),
          count: cell.model.type === 'code' ? cell.model.executionCount : null,
          tags: cell.model.getMetadata('tags') || [], outputs};
});
const images = Array.from(panel.node.querySelectorAll('.jp-OutputArea-output img')).map(img => ({
  cell: panel.content.widgets.findIndex(cell => cell.node.contains(img)),
  complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
const widgetFailures = [];
panel.node.querySelectorAll('.jp-OutputArea-output').forEach(node => {
  for (const marker of FAILURES)
    if (node.textContent.includes(marker))
      widgetFailures.push({cell: panel.content.widgets.findIndex(cell => cell.node.contains(node)),
                           text: node.textContent.trim().slice(0, 500)});
});
const dialogs = Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.textContent.trim().slice(0, 500));
return {cells, images, widgetFailures, dialogs};
}""".replace("FAILURES", json.dumps(WIDGET_FAILURES))


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

    def __init__(self, page, server: LabServer, path: str, dialogs: list[str]):
        self.page, self.server, self.path = page, server, path
        self.name = Path(path).stem
        self.dialogs = dialogs  # the page's, from load_lab()
        self.report: RunReport | None = None
        self._started: float | None = None

    @property
    def panel(self):
        """The notebook's panel on the page, as a Playwright locator."""
        panel_id = self.page.evaluate("(path) => {" + _FIND_PANEL + " return panel.id; }", self.path)
        return self.page.locator(f'[id="{panel_id}"]')

    def open(self) -> None:
        """Open the notebook in a new tab of the page (File > Open, as a command); its kernel starts."""
        self.page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path}).then(() => null)",
                           self.path)

    def activate(self) -> None:
        """Bring the notebook's tab to the front."""
        self.page.evaluate("(path) => {" + _FIND_PANEL + " app.shell.activateById(panel.id); panel.content.activate(); }",
                           self.path)

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
            state = self.page.evaluate(_RUN_STATE, self.path)
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
        raw = self.page.evaluate(_REPORT, self.path)
        report = RunReport(self.name, raw["cells"], raw["images"], raw["widgetFailures"], raw["dialogs"], seconds)
        if state["kernel"] != "idle":
            report.dialogs.append(f"kernel is {state['kernel']} after the run")
        self.report = report
        RUN_SECONDS[self.name] = seconds
        return report

    def screenshot(self, name: str | None = None, folder: Path = SCREENSHOTS) -> Path:
        """A screenshot of the whole notebook panel (the viewport is made as tall as the notebook)."""
        self.activate()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name or self.name}.png"
        # The notebook scrolls inside its panel: grow the viewport by what is hidden below the panel's fold.
        hidden = self.page.evaluate("(path) => {" + _FIND_PANEL + """
            const outer = panel.content.node.querySelector('.jp-WindowedPanel-outer');
            const inner = panel.content.node.querySelector('.jp-WindowedPanel-inner');
            outer.scrollTop = 0;
            return inner.scrollHeight - outer.clientHeight; }""", self.path)
        viewport = self.page.viewport_size
        height = min(viewport["height"] + max(hidden, 0) + 40, 16_000)
        self.page.set_viewport_size({"width": viewport["width"], "height": height})
        try:
            self.page.wait_for_timeout(300)
            self.panel.screenshot(path=str(target))
        finally:
            self.page.set_viewport_size(viewport)
        RUN_SCREENSHOTS.append(target)
        return target

    def shutdown_kernel(self) -> None:
        """Ask the server to shut the kernel down, without waiting (the server stops any kernel left at the end)."""
        if not self.page.is_closed():
            self.page.evaluate("(path) => {" + _FIND_PANEL + " if (panel) panel.sessionContext.shutdown(); }",
                               self.path)

    def wait_for_kernel(self, wanted: str, timeout: float) -> None:
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            state = self.page.evaluate(_KERNEL_STATE, self.path)
            if state == wanted:
                return
            time.sleep(0.3)
        dialogs = self.page.locator(".jp-Dialog").all_inner_texts()
        raise AssertionError(f"{self.name}: the kernel was not {wanted} within {timeout:.0f} s (last state: {state}); "
                             f"dialogs on the page: {dialogs or 'none'}\nserver log:\n{self.server.log_tail(1500)}")


RUN_SCREENSHOTS: list[Path] = []  # every screenshot of this session, for the summary at the end
RUN_SECONDS: dict[str, float] = {}  # notebook -> seconds from Run All Cells to the end of its run


# The chat widget


@dataclass
class ChatReply:
    question: str
    answer: str
    lines: list[str] = field(default_factory=list)


def check_reply(question: str, before: list[str], after: list[str], status: str, waited: float, *,
                allow_empty: bool = False) -> str:
    """The answer the transcript shows to `question`, or an AssertionError that says what a learner would see.

    `before` and `after` are the transcript's lines ("You: ...", "BLIP-2: ...", "Error: ...", notes) before
    sending and after waiting `waited` seconds; `status` is the status line under the text box. The widget shows
    an empty answer of the model as "(no answer)": `allow_empty` accepts it (and returns "").
    """
    shown = "\n    ".join(after) or "(empty)"
    new = after[len(before):] if after[:len(before)] == before else after
    asked = [i for i, line in enumerate(new) if line == f"You: {question}"]
    if not asked:
        raise AssertionError(f"The chat did not show the question {question!r} in its transcript after {waited:.0f} s."
                             f"\n  transcript:\n    {shown}\n  status: {status!r}")
    replies = [line for line in new[asked[0] + 1:] if line.startswith(("BLIP-2:", "Error:"))]
    if not replies:
        raise AssertionError(f"The chat gave no response to {question!r} within {waited:.0f} s: the question is "
                             f"shown, no answer and no error line follows it (a learner sees the chat hang)."
                             f"\n  transcript:\n    {shown}\n  status: {status!r}")
    if replies[0].startswith("Error:"):
        raise AssertionError(f"The chat answered {question!r} with an error instead of an answer: {replies[0]}"
                             f"\n  transcript:\n    {shown}")
    answer = replies[0].removeprefix("BLIP-2:").strip()
    if allow_empty and answer == "(no answer)":
        return ""
    if not answer or answer == "(no answer)":
        raise AssertionError(f"The chat's answer to {question!r} is empty ({replies[0]!r}).\n  transcript:\n    {shown}")
    return answer


class ChatBox:
    """The `index`-th ChatWidget in a notebook, found by its text box, driven with the keyboard and mouse."""

    PLACEHOLDER = "Ask about the image"

    def __init__(self, notebook: NotebookTab, index: int = 0):
        self.page = page = notebook.page
        self.root = notebook.panel.locator(".widget-vbox").filter(
            has=page.locator(f'input[placeholder^="{self.PLACEHOLDER}"]')).nth(index)
        self.text = self.root.locator(f'input[placeholder^="{self.PLACEHOLDER}"]')
        self.send = self.root.get_by_role("button", name="Send")
        self.clear = self.root.get_by_role("button", name="Clear")
        self.transcript = self.root.locator(":scope > .widget-html").first
        self.status_line = self.root.locator(":scope > .widget-html").last

    def lines(self) -> list[str]:
        """The transcript's lines as the page shows them (the "no messages" placeholder is no line)."""
        texts = [" ".join(text.split()) for text in
                 self.transcript.locator(".widget-html-content > div > div").all_inner_texts()]
        return [text for text in texts if text and text != "(no messages yet)"]

    def status(self) -> str:
        return " ".join(self.status_line.inner_text().split())

    def ask(self, question: str, *, timeout: float = 60, allow_empty: bool = False) -> ChatReply:
        """Type `question`, click Send, wait for the reply line; `check_reply` judges what the transcript shows."""
        self._require()
        self.root.scroll_into_view_if_needed()
        before = self.lines()
        self.text.click()
        self.text.fill(question)
        self.send.click()
        started = time.monotonic()
        after = before
        while time.monotonic() - started < timeout:
            after = self.lines()
            new = after[len(before):]
            if any(line.startswith(("BLIP-2:", "Error:")) for line in new) and self.send.is_enabled():
                break
            time.sleep(0.2)
        answer = check_reply(question, before, after, self.status(), time.monotonic() - started,
                             allow_empty=allow_empty)
        return ChatReply(question, answer, after)

    def clear_transcript(self, *, timeout: float = 15) -> list[str]:
        """Click Clear and return the transcript's lines once it has changed (or after `timeout`)."""
        self._require()
        before = self.lines()
        self.clear.click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.lines() == before and before:
            time.sleep(0.2)
        return self.lines()

    def _require(self) -> None:
        if self.root.count() == 0:
            raise AssertionError(f"No chat widget on the page: no text box whose placeholder starts with "
                                 f"{self.PLACEHOLDER!r} (did the widget render? is it shown by the last line of a cell?)")


VIEWPORT = {"width": 1400, "height": 1000}


class NotebookBatch:
    """Notebooks run at the same time, each in a tab of one JupyterLab page, so their kernels' work overlaps.

    `wanted` maps a path under the server's root to None (a notebook already there) or to the code cells of a
    scratch notebook to write first. A notebook that fails to open or start raises in `finish`, not for the others.
    One page loads JupyterLab once (about 4 s of CPU per page load here) instead of once per notebook.
    """

    def __init__(self, browser, server: LabServer, wanted: dict[str, list[str] | None]):
        self.browser, self.server, self.wanted = browser, server, wanted
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
            self.tabs[path] = NotebookTab(page, self.server, path, dialogs)
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
