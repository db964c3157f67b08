"""The mode switch: hub mode (the chapter's real checkpoints) or offline mode (the embedded default).

`setup()` decides once per session, picks the device and dtype, seeds the random generators and
prints one banner line saying what it chose and why. The loaders in `mmlab.models` read the result
through `current_setup()`.

Order of precedence for the mode: the `mode` argument, then `MMLAB_MODE=hub|offline`, then any of
`MMLAB_OFFLINE=1`, `HF_HUB_OFFLINE=1`, `TRANSFORMERS_OFFLINE=1` (offline), then a probe of the Hub
(`HF_ENDPOINT`, default https://huggingface.co) that must answer within `timeout` seconds.
The device: the `device` argument, then `MMLAB_DEVICE=cuda|mps|cpu`, then the first of cuda, mps, cpu
that torch can use.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Mode = Literal["hub", "offline"]
MODES = ("hub", "offline")
DEFAULT_ENDPOINT = "https://huggingface.co"
# The request huggingface_hub itself makes before a download (HEAD on a file of the chapter's CLIP):
# a 2xx or a redirect to the file's storage means downloads will work.
PROBE_PATH = "/openai/clip-vit-base-patch32/resolve/main/config.json"
OFFLINE_VARIABLES = ("MMLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(frozen=True)
class Setup:
    """What `mmlab.setup()` chose for this session."""

    mode: Mode  # "hub": the chapter's checkpoints from the Hugging Face Hub; "offline": the embedded default
    reason: str  # why this mode, in words
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype  # torch.float16 on cuda, torch.float32 elsewhere
    seed: int  # seed given to random, numpy and torch


_current: Setup | None = None
# Environment variables setup() set itself, with the values they had before, so that a later
# setup() can tell the user's settings from its own and undo its own.
_ours: dict[str, tuple[str | None, str]] = {}  # name -> (value before, value set)


def setup(mode: Mode | None = None, *, device: str | None = None, seed: int = 0, timeout: float = 3.0) -> Setup:
    """Choose hub or offline mode, the device and dtype; seed everything; print one banner line.

    `mode` forces a mode ("hub" or "offline"); `device` forces a device ("cuda", "mps", "cpu"); the
    environment variables MMLAB_MODE and MMLAB_DEVICE do the same when the arguments are left out.
    The Hub probe never takes much longer than `timeout` seconds.
    """
    global _current
    _restore_environment()
    chosen, reason = _choose_mode(mode, timeout)
    if chosen == "offline":
        _set_environment("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # keeps bars out of the committed (offline) outputs
        _set_environment("HF_HUB_OFFLINE", "1")  # later library calls fail fast instead of waiting
        _set_environment("TRANSFORMERS_OFFLINE", "1")
    _sync_huggingface_hub()

    import torch

    chosen_device, why_device = _choose_device(device)
    dtype = torch.float16 if chosen_device == "cuda" else torch.float32
    seed_everything(seed)
    _current = Setup(mode=chosen, reason=reason, device=chosen_device, dtype=dtype, seed=seed)
    print(_banner(_current, why_device))
    return _current


def current_setup() -> Setup:
    """The last `setup()` result; runs `setup()` with its defaults if there was none."""
    return _current if _current is not None else setup()


def probe_hub(endpoint: str | None = None, timeout: float = 3.0) -> tuple[bool, str]:
    """Ask the Hub for a small file. Returns (answered, explanation); never blocks much past `timeout`.

    The request runs in a daemon thread so that slow DNS or a server that accepts and never answers
    cannot hold the caller: after `timeout` seconds the answer is "no".
    """
    import urllib.error
    import urllib.request

    base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    result: list[tuple[bool, str]] = []

    def ask() -> None:
        try:
            request = urllib.request.Request(base + PROBE_PATH, method="HEAD")
            urllib.request.build_opener(_keep_redirects_handler()).open(request, timeout=timeout).close()
            result.append((True, f"the Hub at {base} answered"))
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:  # the Hub answered with the file's location: that is enough
                result.append((True, f"the Hub at {base} answered"))
            else:
                result.append((False, f"the Hub at {base} answered HTTP {error.code}"))
        except (urllib.error.URLError, OSError, ValueError) as error:
            cause = getattr(error, "reason", error)
            if isinstance(cause, TimeoutError) or "timed out" in str(cause):
                result.append((False, f"the Hub at {base} did not answer within {timeout:g} s"))
            else:
                detail = getattr(cause, "strerror", None) or cause
                result.append((False, f"the Hub at {base} is not reachable: {detail}"))

    thread = threading.Thread(target=ask, name="mmlab-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if result:
        return result[0]
    return False, f"the Hub at {base} did not answer within {timeout:g} s"


# --- internals ------------------------------------------------------------------------------------


def _keep_redirects_handler():
    import urllib.request

    class KeepRedirects(urllib.request.HTTPRedirectHandler):
        """Report a redirect as it is instead of following it to another server."""

        def redirect_request(self, *args, **kwargs):
            return None

    return KeepRedirects


def _choose_mode(mode: str | None, timeout: float) -> tuple[Mode, str]:
    if mode is not None:
        return _checked(mode, "the mode argument of mmlab.setup()"), f"asked for by mmlab.setup({mode!r})"
    forced = os.environ.get("MMLAB_MODE", "").strip()
    if forced:
        return _checked(forced.lower(), "the environment variable MMLAB_MODE"), f"MMLAB_MODE={forced} is set"
    for name in OFFLINE_VARIABLES:
        if _is_true(os.environ.get(name)):
            return "offline", f"{name}={os.environ[name]} is set"
    answered, why = probe_hub(timeout=timeout)
    return ("hub" if answered else "offline"), why


def _checked(mode: str, where: str) -> Mode:
    if mode not in MODES:
        raise ValueError(f"{where} is {mode!r}; use 'hub' (the chapter's models, needs internet) or 'offline' "
                         "(the embedded default), or leave it unset to let mmlab probe the Hub.")
    return mode  # type: ignore[return-value]


def _choose_device(device: str | None) -> tuple[str, str]:
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    forced, why = (device, "asked for") if device is not None else (os.environ.get("MMLAB_DEVICE", "").strip(), "")
    if forced:
        where = "device" if device is not None else "MMLAB_DEVICE"
        available = {"cuda": cuda, "mps": mps, "cpu": True}
        if forced not in available:
            raise ValueError(f"{where} must be 'cuda', 'mps' or 'cpu', not {forced!r}.")
        if not available[forced]:
            raise ValueError(f"{where}={forced!r} asks for a {forced.upper()} device but torch finds none on this "
                             "machine. Leave it unset to pick the best available device.")
        return forced, why or f"MMLAB_DEVICE={forced} is set"
    if cuda:
        return "cuda", f"CUDA GPU: {torch.cuda.get_device_name(0)}"
    if mps:
        return "mps", "Apple GPU (MPS)"
    return "cpu", "no CUDA or MPS GPU found"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (the lessons and the training recipes)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too


def _banner(s: Setup, why_device: str) -> str:
    what = "the chapter's models from the Hugging Face Hub" if s.mode == "hub" else "the embedded default models"
    dtype = str(s.dtype).removeprefix("torch.")
    return f"mmlab: {s.mode} mode, {what} (why: {s.reason}); {s.device} ({why_device}), {dtype}; seed {s.seed}"


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def _set_environment(name: str, value: str) -> None:
    _ours.setdefault(name, (os.environ.get(name), value))
    os.environ[name] = value


def _restore_environment() -> None:
    """Undo what an earlier setup() set (unless changed since), so that only the user's own settings count."""
    for name, (before, value) in _ours.items():
        if os.environ.get(name) != value:
            continue
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
    _ours.clear()


def _sync_huggingface_hub() -> None:
    """huggingface_hub reads its switches once at import: update them if it is already imported.

    Download progress bars: off where HF_HUB_DISABLE_PROGRESS_BARS is true (offline mode sets it), on otherwise,
    so that hub mode shows a multi-gigabyte download moving instead of a silent cell. transformers takes its
    own switch from huggingface_hub's at import; it is set too if transformers is already imported.
    """
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = _is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
    bars = sys.modules.get("huggingface_hub.utils.tqdm")
    if bars is not None:
        hidden = _is_true(os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"))
        bars.HF_HUB_DISABLE_PROGRESS_BARS = True if hidden else None  # the copy it took at import
        if constants is not None:
            constants.HF_HUB_DISABLE_PROGRESS_BARS = bars.HF_HUB_DISABLE_PROGRESS_BARS
        (bars.disable_progress_bars if hidden else bars.enable_progress_bars)()
        logging = sys.modules.get("transformers.utils.logging")  # its "Loading weights" bar follows the same switch
        if logging is not None:
            (logging.disable_progress_bar if hidden else logging.enable_progress_bar)()
