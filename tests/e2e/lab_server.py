"""A JupyterLab server for the browser tests: a prepared root, a free loopback port, a token, clean shutdown.

`prepare_root` copies notebooks/ with their outputs stripped and writes the server's config and lab settings;
`start_lab` runs one JupyterLab there, with its settings, workspaces, runtime and config folders under that root
so no user state leaks in, and its kernels in the shared notebook kernel environment (mmlab._kernel_env).
`LabServer.stop` ends the server and any kernel it leaves behind.
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
from dataclasses import dataclass
from pathlib import Path

from mmlab._kernel_env import TRAINING_LESSONS, few_steps, kernel_environment

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
# The notebooks run at the same time, so each kernel gets one math thread: measured here, 80 s for the suite
# instead of 100 s. Everything else is the environment the committed outputs come from.
KERNEL_ENVIRONMENT = kernel_environment(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
# JupyterLab user settings: every cell attached to the page (the checks read the whole notebook), no news popup.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
# The training lessons run with a few steps here (nbval runs them in full), so the suite checks that they run and
# draw without paying for their training twice.
BROWSER_STEPS = 4
SERVER_CONFIG = {"LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                            "extension_manager": "readonly", "expose_app_in_browser": True}}


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
        if path.stem in TRAINING_LESSONS:
            few_steps(notebook.cells, BROWSER_STEPS, name=path.name, why="browser test")
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_mentioning(text: str, *, proc: Path = Path("/proc")) -> list[int]:
    """Process ids whose command line contains `text` (this process excluded): from `proc` where the system has
    one (Linux), else from `ps` (macOS)."""
    if proc.is_dir():
        lines = []
        for entry in proc.iterdir():
            try:
                if entry.name.isdigit():
                    lines.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                        errors="replace")))
            except OSError:  # the process ended meanwhile
                continue
    else:
        listing = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,command="], capture_output=True, text=True, check=True)
        lines = [(int(pid), command) for pid, _, command in
                 (line.strip().partition(" ") for line in listing.stdout.splitlines()) if pid.isdigit()]
    return [pid for pid, command_line in lines if text in command_line and pid != os.getpid()]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
