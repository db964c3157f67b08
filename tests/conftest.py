"""Shared fixtures for the unit tests."""

import importlib
import os

import pytest

import mmlab.mode

MODE_VARIABLES = ("MMLAB_MODE", "MMLAB_DEVICE", "MMLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT",
                  "HF_HUB_DISABLE_PROGRESS_BARS")


@pytest.fixture
def isolated_mode():
    """No mode setting in the environment and no earlier setup(); everything restored afterwards.

    setup() writes os.environ itself (that is its job), so the whole environment is put back.
    """
    saved_environ = dict(os.environ)
    saved_current, saved_ours = mmlab.mode._current, dict(mmlab.mode._ours)
    for name in MODE_VARIABLES:
        os.environ.pop(name, None)
    mmlab.mode._current = None
    mmlab.mode._ours.clear()
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        hub_constants = None
    saved_hub_offline = hub_constants.HF_HUB_OFFLINE if hub_constants else None
    hub_bars = importlib.import_module("huggingface_hub.utils.tqdm")  # the module: `.utils.tqdm` is also a class
    saved_bars = hub_bars.HF_HUB_DISABLE_PROGRESS_BARS, dict(hub_bars.progress_bar_states)
    yield
    hub_bars.HF_HUB_DISABLE_PROGRESS_BARS = saved_bars[0]
    hub_bars.progress_bar_states.clear()
    hub_bars.progress_bar_states.update(saved_bars[1])
    os.environ.clear()
    os.environ.update(saved_environ)
    mmlab.mode._current = saved_current
    mmlab.mode._ours.clear()
    mmlab.mode._ours.update(saved_ours)
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = saved_hub_offline
