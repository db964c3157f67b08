"""Environment check: `python -m mmlab.doctor`, or `mmlab.doctor.report()` in a notebook.

Prints versions, the device and its memory, the mode and why, and whether the embedded checkpoints
load and run (with timings). Paste its output into bug reports.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "transformers", "huggingface_hub", "open_clip_torch", "sentence-transformers",
            "tokenizers", "safetensors", "numpy", "pillow", "scikit-image", "matplotlib", "ipywidgets", "tqdm",
            "jupyterlab", "ipykernel", "nbval", "pytest")
VARIABLES = ("MMLAB_MODE", "MMLAB_DEVICE", "MMLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HOME", "CI")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it passed, and the details."""

    name: str
    ok: bool
    detail: str


def report(*, load_models: bool = True) -> list[Check]:
    """Print the environment report and return its checks. `load_models=False` skips the checkpoint loads."""
    import mmlab

    setup = mmlab.current_setup()  # runs setup() (and prints its banner) if the session has none yet
    _section("mmlab")
    _line("mmlab", f"{mmlab.__version__} at {Path(mmlab.__file__).parent}")
    _line("python", f"{platform.python_version()} at {sys.executable}")
    _line("system", f"{platform.platform()}, {'Colab' if 'google.colab' in sys.modules else 'not Colab'}")
    _section("packages")
    for name in PACKAGES:
        _line(name, _version(name))
    _section("environment (after mmlab.setup)")
    for name in VARIABLES:
        _line(name, os.environ.get(name, "(unset)"))
    _section("device")
    _line("device", f"{setup.device}, {str(setup.dtype).removeprefix('torch.')}")
    _line("memory", _memory(setup.device))
    _section("mode")
    _line("mode", setup.mode)
    _line("why", setup.reason)

    checks = []
    if load_models:
        _section("embedded checkpoints")
        checks += [_check_clip(), _check_blip2()]
    failed = [c for c in checks if not c.ok]
    _section("result")
    print("  all checks passed" if not failed else f"  {len(failed)} check(s) failed: "
          + ", ".join(c.name for c in failed))
    return checks


def main() -> int:
    checks = report()
    return 0 if all(c.ok for c in checks) else 1


# --- checks ---------------------------------------------------------------------------------------


def _check_clip() -> Check:
    """Load the embedded CLIP and score one scene against two captions."""

    def run():
        import torch

        from mmlab import models

        model, processor = models.load_clip(models.embedded_path("clip"))
        loaded = time.perf_counter()
        inputs = processor(text=["a red circle", "a blue square"], images=_scene(), return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model(**inputs.to(model.device, dtype=model.dtype))
        assert out.logits_per_image.shape == (1, 2), f"unexpected logits shape {tuple(out.logits_per_image.shape)}"
        return loaded, f"{_size(models.embedded_path('clip'))}"

    return _timed("clip", run)


def _check_blip2() -> Check:
    """Load the embedded BLIP-2 and generate a few tokens for one scene."""

    def run():
        import torch

        from mmlab import models

        model, processor = models.load_blip2(models.embedded_path("blip2"))
        loaded = time.perf_counter()
        inputs = processor(images=_scene(), text="Question: what color is the shape? Answer:", return_tensors="pt")
        with torch.no_grad():
            tokens = model.generate(**inputs.to(model.device, dtype=model.dtype), max_new_tokens=3)
        assert tokens.shape[-1] > inputs["input_ids"].shape[-1], "generate() added no tokens"
        return loaded, f"{_size(models.embedded_path('blip2'))}"

    return _timed("blip2", run)


def _timed(name: str, run) -> Check:
    start = time.perf_counter()
    try:
        loaded, size = run()
    except Exception as error:  # noqa: BLE001 - the doctor reports every failure instead of stopping
        check = Check(name, False, f"FAILED: {type(error).__name__}: {error}")
    else:
        end = time.perf_counter()
        check = Check(name, True, f"ok: loaded in {loaded - start:.2f} s (with imports), ran in {end - loaded:.2f} s ({size})")
    _line(name, check.detail)
    return check


# --- helpers --------------------------------------------------------------------------------------


def _scene():
    import random

    from mmlab.data.scenes import render_scene, sample_scene

    return render_scene(sample_scene(random.Random(0)))


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory(device: str) -> str:
    import torch

    from mmlab.models import device_memory

    gib, memory = 2**30, device_memory(device)
    if device == "cuda":
        free, total = memory
        return f"{torch.cuda.get_device_name(0)}: {free / gib:.1f} GiB free of {total / gib:.1f} GiB"
    cores = os.cpu_count()
    if memory is None:
        return f"{cores} CPU cores (memory unknown)"
    free, total = memory
    return f"{cores} CPU cores, {free / gib:.1f} GiB free of {total / gib:.1f} GiB RAM"


def _size(folder: Path) -> str:
    megabytes = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6
    return f"{megabytes:.1f} MB on disk"


def _section(title: str) -> None:
    print(f"{title}:")


def _line(name: str, value: str) -> None:
    print(f"  {name:<22} {value}")


if __name__ == "__main__":
    raise SystemExit(main())
