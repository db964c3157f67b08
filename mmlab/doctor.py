"""Environment check: `python -m mmlab.doctor`, or `mmlab.doctor.report()` in a notebook.

Prints versions, the device and its memory, the mode and why, and whether the embedded checkpoints
load and run (with timings). Paste its output into bug reports.

`python -m mmlab.doctor --hub` (in a notebook: `mmlab.doctor.hub_preflight()`) is the pre-flight check of hub
mode before a class: it loads the chapter's checkpoints and checks the chapter's known results, then prints a
pass/fail table with what to do for each failure.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
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


def main(argv: Sequence[str] = ()) -> int:
    """The command line: the environment check, or with `--hub` the hub pre-flight; 1 when a check failed."""
    parser = argparse.ArgumentParser(prog="python -m mmlab.doctor", description="mmlab's environment check.")
    parser.add_argument("--hub", action="store_true",
                        help="pre-flight check of hub mode: load the chapter's checkpoints and check its results")
    if parser.parse_args(argv).hub:
        import mmlab

        mmlab.setup("hub")
        checks = hub_preflight()
    else:
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


# --- hub pre-flight -------------------------------------------------------------------------------

PUPPY = "a puppy playing in the snow"
CHAPTER_PUPPY_IDS = [49406, 320, 6829, 1629, 530, 518, 2583, 49407]  # the chapter's CLIP tokenizer ids
CHAPTER_DIAGONAL = (0.33, 0.35, 0.31)  # the chapter's CLIP: each image with its own caption (puppy, cat, car)
CHAPTER_OFF_DIAGONAL_MAX = 0.19  # ... and at most this with another image's caption
SIMILARITY_TOLERANCE = 0.02  # float16 on a GPU, other image resizing: a few thousandths; more means a change
CAR_WORDS = re.compile(r"\b(car|cars|supercar|sports car|vehicle)\b", re.IGNORECASE)
MIN_FREE_GPU_GIB = 1.0  # left free with both models loaded: room for batches and generation


@dataclass(frozen=True)
class Preflight:
    """One row of the hub pre-flight table: what was checked, whether it passed, what was found, what to do."""

    name: str
    ok: bool
    found: str
    fix: str = ""


def hub_preflight(images=None) -> list[Preflight]:
    """Check, before a class, that hub mode gives the chapter's results; print the table and return its rows.

    Loads the chapter's CLIP and BLIP-2 through `mmlab.models` (as the lessons do) and checks: the CLIP tokenizer's
    ids for PUPPY, the image/caption similarity matrix of the chapter's three images (each image closest to its own
    caption, near the chapter's values), that BLIP-2's caption of the car names a car, and the GPU memory left.
    `images` (puppy, cat, car; default: the chapter's, downloaded as the lessons do) is there for tests.
    """
    from mmlab import models
    from mmlab.mode import current_setup

    setup = current_setup()
    rows = [Preflight("hub mode", setup.mode == "hub", f"{setup.mode} ({setup.reason}); {setup.device}, "
                      f"{str(setup.dtype).removeprefix('torch.')}",
                      "" if setup.mode == "hub" else
                      "Run mmlab.setup('hub') first (or MMLAB_MODE=hub); it needs the Hugging Face Hub to answer.")]
    if rows[0].ok:
        state: dict = {}
        rows += [
            _preflight("CLIP loads", lambda: _load(state, "clip", models.load_clip),
                       "Check the internet connection to huggingface.co and the disk space for the HF cache (600 MB)."),
            _preflight("CLIP tokenizer ids", lambda: _tokenizer_ids(state),
                       "The tokenizer is not the chapter's: load openai/clip-vit-base-patch32's own processor "
                       "(mmlab.models.load_clip()); clear its folder in the HF cache if the files were changed."),
            _preflight("chapter images", lambda: _chapter_images(state, images),
                       "The images come from the book's GitHub repository (mmlab.data.images.CHAPTER_IMAGES_URL): "
                       "check that raw.githubusercontent.com is reachable."),
            _preflight("similarity matrix", lambda: _similarity(state),
                       "Expect the chapter's diagonal 0.33 / 0.35 / 0.31, off-diagonal at most 0.19: check that the "
                       "images are the chapter's puppy, cat and car and the model is openai/clip-vit-base-patch32; "
                       "rerun 02_clip in hub mode and compare its heatmap."),
            _preflight("BLIP-2 loads", lambda: _load(state, "blip2", models.load_blip2),
                       "BLIP-2 needs a CUDA GPU with about 8 GB free (Colab: Runtime > Change runtime type > T4 GPU) "
                       "and 15 GB of disk for the download; on a smaller GPU use load_blip2(quantize='8bit')."),
            _preflight("BLIP-2 captions the car", lambda: _car_caption(state),
                       "The chapter's caption names a car ('an orange supercar driving on the road at sunset'): "
                       "check the model is Salesforce/blip2-opt-2.7b in float16 and transformers is 5.x."),
            _preflight("GPU memory left", lambda: _gpu_memory_left(setup.device),
                       "Restart the runtime to free memory other notebooks hold (Colab: Runtime > Restart session); "
                       "on a CPU-only machine pick a GPU runtime."),
        ]
    _print_preflight(rows)
    return rows


class _NotRun(Exception):
    """A check that needs what an earlier check failed to load."""


def _preflight(name: str, run: Callable[[], tuple[bool, str]], fix: str) -> Preflight:
    """Run one check; an exception is a failure whose message says what went wrong (never a crash)."""
    try:
        ok, found = run()
    except _NotRun as missing:
        ok, found, fix = False, f"not run: {missing} did not load", "Fix the failed check above first."
    except Exception as error:  # noqa: BLE001 - the pre-flight reports every failure instead of stopping
        ok, found = False, f"{type(error).__name__}: {error}"
    return Preflight(name, ok, found, "" if ok else fix)


def _needs(state: dict, *names: str) -> None:
    missing = [name for name in names if name not in state]
    if missing:
        raise _NotRun(" and ".join(missing))


def _load(state: dict, name: str, loader) -> tuple[bool, str]:
    start = time.perf_counter()
    state[name] = loader()
    return True, f"{state[name][0].name_or_path} in {time.perf_counter() - start:.1f} s"


def _tokenizer_ids(state: dict) -> tuple[bool, str]:
    _needs(state, "clip")
    ids = list(state["clip"][1].tokenizer(PUPPY)["input_ids"])
    return ids == CHAPTER_PUPPY_IDS, f"{ids}" + ("" if ids == CHAPTER_PUPPY_IDS else f", want {CHAPTER_PUPPY_IDS}")


def _chapter_images(state: dict, images) -> tuple[bool, str]:
    from mmlab.data.images import CHAPTER_CAPTIONS, LessonImage, lesson_images

    if images is None:
        state["images"] = lesson_images("hub")
    else:
        state["images"] = [LessonImage(name, image, text)
                           for (name, text), image in zip(CHAPTER_CAPTIONS.items(), images, strict=True)]
    return True, ", ".join(f"{item.name} {item.image.width}x{item.image.height}" for item in state["images"])


def _similarity(state: dict) -> tuple[bool, str]:
    import torch

    from mmlab.embed import embed_images, embed_texts

    _needs(state, "clip", "images")
    model, processor = state["clip"]
    items = state["images"]
    image_emb = embed_images(model, processor, [i.image for i in items], progress=False, dtype=torch.float32)
    text_emb = embed_texts(model, processor, [i.caption for i in items], progress=False, dtype=torch.float32)
    sim = image_emb @ text_emb.T  # (3, 3): image i against caption j
    diagonal, off = sim.diagonal(), sim[~torch.eye(len(items), dtype=torch.bool)]
    order = torch.arange(len(items))
    dominant = bool((sim.argmax(0) == order).all() and (sim.argmax(1) == order).all())
    near = all(abs(float(d) - want) <= SIMILARITY_TOLERANCE for d, want in zip(diagonal, CHAPTER_DIAGONAL))
    low = float(off.max()) <= CHAPTER_OFF_DIAGONAL_MAX + SIMILARITY_TOLERANCE
    found = f"diagonal {' / '.join(f'{float(d):.2f}' for d in diagonal)}, largest off-diagonal {float(off.max()):.2f}"
    if not dominant:
        found += "; an image is closer to another caption than to its own"
    return near and dominant and low, found


def _car_caption(state: dict) -> tuple[bool, str]:
    from mmlab.blip2 import caption

    _needs(state, "blip2", "images")
    model, processor = state["blip2"]
    car = next(item.image for item in state["images"] if item.name == "car")
    text = caption(model, processor, car, progress=False)[0]
    return bool(CAR_WORDS.search(text)), repr(text)


def _gpu_memory_left(device: str) -> tuple[bool, str]:
    from mmlab.models import device_memory

    if device != "cuda":
        return False, f"no CUDA GPU (device {device}): hub mode's BLIP-2 needs one"
    free = device_memory(device)[0] / 2**30
    return free >= MIN_FREE_GPU_GIB, f"{free:.1f} GiB free with both models loaded (want {MIN_FREE_GPU_GIB:.0f} GiB)"


def _print_preflight(rows: list[Preflight]) -> None:
    print("hub pre-flight:")
    for row in rows:
        print(f"  {row.name:<24} {'PASS' if row.ok else 'FAIL'}  {row.found}")
        if row.fix:
            print(f"  {'':<24}       what to do: {row.fix}")
    failed = [row.name for row in rows if not row.ok]
    print("  all checks passed: hub mode gives the chapter's results" if not failed else
          f"  {len(failed)} of {len(rows)} failed: {', '.join(failed)}")


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
    raise SystemExit(main(sys.argv[1:]))
