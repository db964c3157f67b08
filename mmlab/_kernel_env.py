"""The environment of a notebook's kernel when its outputs are made or checked: the one definition.

The committed outputs come from `./workbook refresh` (tools/refresh_notebooks.py) and nbval compares them
in `./workbook test` (the root conftest.py); the browser tests (tests/e2e) and the device benchmark
(benchmarks/lessons_on_device.py) run the same notebooks. All of them start from KERNEL_ENVIRONMENT, and each
names in `kernel_environment(...)` only what it must change, so the four cannot drift apart.
"""

from __future__ import annotations

from types import MappingProxyType

KERNEL_ENVIRONMENT = MappingProxyType({
    "MMLAB_MODE": "offline",  # the embedded default, whatever the network says
    "MMLAB_DEVICE": "cpu",  # fp32 on the CPU: the same numbers on every machine, GPU or not
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # no download bars in committed outputs
    "PYTHONHASHSEED": "0",
})


def kernel_environment(**overrides: str) -> dict[str, str]:
    """KERNEL_ENVIRONMENT with a caller's own settings on top (`MMLAB_DEVICE="cuda"`, `OMP_NUM_THREADS="1"`)."""
    return {**KERNEL_ENVIRONMENT, **overrides}
