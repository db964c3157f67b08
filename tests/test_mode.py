"""The mode switch: it decides hub vs offline without ever hanging, and says why."""

import http.server
import os
import random
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import mmlab
import mmlab.mode
from mmlab.mode import PROBE_PATH

pytestmark = pytest.mark.usefixtures("isolated_mode")
SLACK = 1.0  # seconds allowed beyond the probe's timeout


@pytest.fixture
def silent_server():
    """A local socket that accepts connections and never answers: a Hub behind a broken proxy."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused at once
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hub_server():
    """A local HTTP server standing in for the Hub; `status` sets its answer, `paths` records requests."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            hub.paths.append(self.path)
            self.send_response(hub.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.status, hub.paths = 200, []
    hub.url = f"http://127.0.0.1:{hub.server_address[1]}"
    thread = threading.Thread(target=hub.serve_forever, daemon=True)
    thread.start()
    yield hub
    hub.shutdown()
    hub.server_close()


def timed_setup(**kwargs):
    start = time.perf_counter()
    result = mmlab.setup(**kwargs)
    return result, time.perf_counter() - start


def test_a_server_that_never_answers_gives_offline_within_the_timeout(silent_server, capsys):
    os.environ["HF_ENDPOINT"] = silent_server
    result, elapsed = timed_setup(timeout=1.0)
    assert result.mode == "offline"
    assert elapsed < 1.0 + SLACK
    assert "did not answer within 1 s" in result.reason and silent_server in result.reason


def test_a_closed_port_gives_offline_at_once(closed_port):
    os.environ["HF_ENDPOINT"] = closed_port
    result, elapsed = timed_setup(timeout=3.0)
    assert result.mode == "offline"
    assert elapsed < 1.0
    assert "not reachable" in result.reason


def test_a_hub_that_answers_gives_hub_mode(hub_server, capsys):
    os.environ["HF_ENDPOINT"] = hub_server.url + "/"
    result = mmlab.setup()
    assert (result.mode, result.reason) == ("hub", f"the Hub at {hub_server.url} answered")
    assert hub_server.paths == [PROBE_PATH]
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
    assert "mmlab: hub mode" in capsys.readouterr().out


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_the_file_counts_as_an_answer_and_is_not_followed(hub_server, status):
    os.environ["HF_ENDPOINT"] = hub_server.url
    hub_server.status = status  # with no Location header: following it would fail
    assert mmlab.setup().mode == "hub"
    assert hub_server.paths == [PROBE_PATH]


@pytest.mark.parametrize("status", [404, 503])
def test_a_hub_that_answers_with_an_error_gives_offline_and_the_status(hub_server, status):
    os.environ["HF_ENDPOINT"] = hub_server.url
    hub_server.status = status
    result = mmlab.setup()
    assert result.mode == "offline" and f"HTTP {status}" in result.reason


@pytest.mark.parametrize("variable", ["MMLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_variables_force_offline_without_asking_the_hub(variable, hub_server):
    os.environ["HF_ENDPOINT"] = hub_server.url
    os.environ[variable] = "1"
    result = mmlab.setup()
    assert result.mode == "offline" and result.reason == f"{variable}=1 is set"
    assert hub_server.paths == []


def test_mmlab_mode_forces_either_mode_and_wins_over_hf_hub_offline(hub_server):
    os.environ["HF_ENDPOINT"] = hub_server.url
    os.environ["HF_HUB_OFFLINE"] = "1"  # the user's own setting: stays (hub mode from the local cache)
    os.environ["MMLAB_MODE"] = "offline"
    assert mmlab.setup().mode == "offline"
    os.environ["MMLAB_MODE"] = "hub"
    result = mmlab.setup()
    assert (result.mode, result.reason) == ("hub", "MMLAB_MODE=hub is set")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert hub_server.paths == []


def test_the_argument_wins_over_the_environment(hub_server):
    os.environ["HF_ENDPOINT"] = hub_server.url
    os.environ["MMLAB_MODE"] = "hub"
    result = mmlab.setup("offline")
    assert (result.mode, result.reason) == ("offline", "asked for by mmlab.setup('offline')")
    assert mmlab.setup("hub").mode == "hub"
    assert hub_server.paths == []


@pytest.mark.parametrize("mode", ["online", "HUB ", ""])
def test_an_unknown_mode_is_a_clear_error(mode):
    with pytest.raises(ValueError, match="use 'hub'"):
        mmlab.setup(mode)


def test_an_unknown_mode_in_the_environment_names_the_variable():
    os.environ["MMLAB_MODE"] = "local"
    with pytest.raises(ValueError, match="MMLAB_MODE"):
        mmlab.setup()


def test_offline_sets_the_hub_switches_and_a_later_hub_setup_undoes_only_its_own(hub_server):
    import huggingface_hub.constants

    os.environ["HF_ENDPOINT"] = hub_server.url
    mmlab.setup("offline")
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True  # already imported: updated in place
    assert mmlab.setup().mode == "hub"  # the variables it set itself do not force offline again
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_hub_mode_shows_download_progress_and_offline_mode_hides_it(hub_server):
    import huggingface_hub.utils
    import transformers.utils.logging

    os.environ["HF_ENDPOINT"] = hub_server.url
    mmlab.setup("offline")
    assert huggingface_hub.utils.are_progress_bars_disabled()
    assert not transformers.utils.logging.is_progress_bar_enabled()
    mmlab.setup("hub")  # a 15 GB BLIP-2 download must not run in a silent cell
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert not huggingface_hub.utils.are_progress_bars_disabled()
    assert transformers.utils.logging.is_progress_bar_enabled()


def test_a_users_own_switch_for_progress_bars_is_kept_in_hub_mode():
    import huggingface_hub.utils

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    mmlab.setup("hub")
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert huggingface_hub.utils.are_progress_bars_disabled()


def test_one_banner_line_says_mode_reason_device_and_dtype(capsys):
    mmlab.setup("offline", device="cpu", seed=3)
    lines = capsys.readouterr().out.splitlines()
    expected = ("mmlab: offline mode, the embedded default models (why: asked for by mmlab.setup('offline')); "
                "cpu (asked for), float32; seed 3")
    assert lines == [expected]


def test_device_order_is_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    result = mmlab.setup("offline")
    assert (result.device, result.dtype) == ("cuda", torch.float16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert (mmlab.setup("offline").device, mmlab.current_setup().dtype) == ("mps", torch.float32)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert (mmlab.setup("offline").device, mmlab.current_setup().dtype) == ("cpu", torch.float32)


def test_mmlab_device_forces_the_device_and_the_argument_wins(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    os.environ["MMLAB_DEVICE"] = "cpu"
    assert (mmlab.setup("offline").device, mmlab.current_setup().dtype) == ("cpu", torch.float32)
    assert mmlab.setup("offline", device="cuda").device == "cuda"


def test_asking_for_a_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="asks for a CUDA device but torch finds none"):
        mmlab.setup("offline", device="cuda")
    with pytest.raises(ValueError, match="device must be 'cuda', 'mps' or 'cpu'"):
        mmlab.setup("offline", device="gpu")
    os.environ["MMLAB_DEVICE"] = "tpu"
    with pytest.raises(ValueError, match="MMLAB_DEVICE must be"):
        mmlab.setup("offline")


def test_the_seed_makes_random_numpy_and_torch_repeat():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    mmlab.setup("offline", seed=7)
    first = draw()
    mmlab.setup("offline", seed=7)
    assert draw() == first
    mmlab.setup("offline", seed=8)
    assert draw() != first


def test_current_setup_returns_the_last_setup_or_runs_one():
    os.environ["MMLAB_OFFLINE"] = "1"
    made = mmlab.current_setup()  # none yet: runs setup()
    assert made.mode == "offline" and mmlab.current_setup() is made
    forced = mmlab.setup("hub")
    assert mmlab.current_setup() is forced
    with pytest.raises(AttributeError):
        forced.mode = "offline"  # frozen


def test_import_mmlab_stays_light():
    code = "import sys, mmlab; print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_submodules_load_lazily():
    code = "import mmlab; print(mmlab.models.embedded_path('clip').name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "clip"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = mmlab.nonexistent
