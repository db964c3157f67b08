"""How the tools and tests run a notebook: its kernel's environment, and the training lessons' few-steps switch.

The committed outputs come from `./workbook refresh` (tools/refresh_notebooks.py) and nbval compares them
in `./workbook test` (the root conftest.py); the browser tests (tests/e2e) and the device benchmark
(benchmarks/lessons_on_device.py) run the same notebooks. All of them start from KERNEL_ENVIRONMENT, and each
names in `kernel_environment(...)` only what it must change, so the four cannot drift apart.

The training lessons (TRAINING_LESSONS) set their step count in one top-level `STEPS = ...` line. Runs that check
only that a lesson runs, not its committed outputs (the browser tests, `--lesson-steps` in the lowest-versions and
Colab runs), replace that line with `few_steps(...)`, so a break still fails them but they never repeat the
full trainings that nbval already checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

KERNEL_ENVIRONMENT = MappingProxyType({
    "MMLAB_MODE": "offline",  # the embedded default, whatever the network says
    "MMLAB_DEVICE": "cpu",  # fp32 on the CPU: the same numbers on every machine, GPU or not
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # no download bars in committed outputs
    "PYTHONHASHSEED": "0",
})


# What a hub-mode run (`pytest --hub`) takes out of KERNEL_ENVIRONMENT: the offline switches, and the progress-bar
# switch, so that hub mode's downloads show their bars as they do in Colab.
HUB_UNSET = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS")


def hub_kernel_environment(hub_variables: dict[str, str], **overrides: str) -> dict[str, str]:
    """A hub-mode run's kernel environment: KERNEL_ENVIRONMENT less HUB_UNSET, the Hub's variables (HF_ENDPOINT,
    MMLAB_IMAGE_BASE_URL, ... from tools/loopback_hub.py) and a caller's own settings on top."""
    kept = {k: v for k, v in KERNEL_ENVIRONMENT.items() if k not in HUB_UNSET}
    return kept | hub_variables | overrides


def kernel_environment(**overrides: str) -> dict[str, str]:
    """KERNEL_ENVIRONMENT with a caller's own settings on top (`MMLAB_DEVICE="cuda"`, `OMP_NUM_THREADS="1"`)."""
    return {**KERNEL_ENVIRONMENT, **overrides}


TRAINING_LESSONS = ("06_train_clip", "07_train_bridge")


def few_steps(cells: Iterable, steps: int, *, name: str, why: str) -> None:
    """Set the one top-level `STEPS = ...` line among `cells` (nbformat cells, or nbval's) to `STEPS = {steps}`.

    Raises ValueError unless exactly one line of the code cells starts with `STEPS = `.
    """
    found = [(cell, i) for cell in cells if cell.cell_type == "code"
             for i, line in enumerate(cell.source.splitlines()) if line.startswith("STEPS = ")]
    if len(found) != 1:
        raise ValueError(f"{name}: a training lesson needs exactly one top-level line starting with 'STEPS = ' "
                         f"(runs that only check that it runs shorten it), found {len(found)}")
    cell, i = found[0]
    lines = cell.source.splitlines()
    lines[i] = f"STEPS = {steps}  # {why}: a few steps (nbval runs the lesson in full)"
    cell.source = "\n".join(lines)
