"""mmlab: the companion package of the multimodal LLM workbook.

`import mmlab` is fast: it imports only the mode switch. The other modules load on first use
(`mmlab.models`, `mmlab.viz`, ...), so a notebook pays for torch and transformers only when it needs them.
"""

import importlib

from mmlab.mode import Setup, current_setup, setup

__version__ = "0.1.0"
__all__ = ["Setup", "current_setup", "setup"]

_LAZY_SUBMODULES = {"blip2", "chat", "data", "doctor", "embed", "evaluate", "exercises", "interop", "models", "prefix",
                    "tiny_vit", "tokenization", "train", "viz", "vit"}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"mmlab.{name}")  # also binds mmlab.<name> for the next access
    raise AttributeError(f"module 'mmlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES)
