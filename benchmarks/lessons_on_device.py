"""Run every lesson's code on a device (a GPU, say) and time it; optionally time hub-size stand-ins there.

    python benchmarks/lessons_on_device.py [--device cuda] [--standins] [notebooks/02_clip.ipynb ...]

nbval checks the notebooks on the CPU, where their committed outputs come from. This script answers the
other question an instructor has before a Colab class: does every cell also run on a GPU in float16? Each
notebook runs in its own process, cell by cell in an IPython shell (no Jupyter server needed), offline on
the embedded default, with `MMLAB_DEVICE` set; it prints the seconds per notebook and any failing cell.

`--standins` then builds random-weight models with the chapter checkpoints' architectures (ViT-B/32 CLIP
and BLIP-2 OPT-2.7b, which needs a GPU with about 8 GiB free) in a temporary Hugging Face cache under
the hub ids, and times the hub code path: `load_clip`, `embed_images`, `load_blip2`, `caption`,
`answer`. The weights are random, so the texts mean nothing; the shapes, memory and speed are real.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmlab._kernel_env import kernel_environment

ROOT = Path(__file__).resolve().parents[1]


def run_notebook_here(path: Path) -> int:
    """Execute the code cells of one notebook in this process; print each failure. Returns the failures."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    failures = 0
    for number, cell in enumerate(cells, 1):
        result = shell.run_cell("".join(cell["source"]), silent=False)
        if not result.success:
            failures += 1
            print(f"FAILED: {path.name}, code cell {number}: {result.error_in_exec or result.error_before_exec!r}")
    return failures


def notebook_environment(device: str) -> dict[str, str]:
    """The kernel environment of the committed outputs, on `device`, drawing figures without a display."""
    return kernel_environment(MMLAB_DEVICE=device, MPLBACKEND="Agg")


def run_notebooks(paths: list[Path], device: str) -> bool:
    environment = {**os.environ, **notebook_environment(device)}
    ok = True
    for path in paths:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--one", str(path)], env=environment, cwd=path.parent,
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        failures = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        status = "ok" if done.returncode == 0 and not failures else "FAILED"
        ok &= status == "ok"
        print(f"{path.name:28} {status:6} {seconds:6.1f} s on {device}", flush=True)
        for line in failures or ([done.stderr[-2000:]] if done.returncode else []):
            print("    " + line)
    return ok


def standins(device: str) -> None:
    import huggingface_hub.constants
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, CLIPConfig, CLIPModel

    import mmlab
    from mmlab import models
    from mmlab.blip2 import answer, caption
    from mmlab.data.images import example_photo
    from mmlab.embed import embed_images

    cache = Path(tempfile.mkdtemp(prefix="mmlab-standins-"))

    def place(repo_id: str, model, processor) -> None:
        snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / ("0" * 40)
        model.save_pretrained(snapshot)
        processor.save_pretrained(snapshot)
        (snapshot.parents[1] / "refs").mkdir()
        (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)

    start = time.perf_counter()
    clip_processor = models.load_clip(models.embedded_path("clip"))[1]  # the real CLIP tokenizer and preprocessing
    with torch.device(device):
        place(models.CLIP_HUB_ID, CLIPModel(CLIPConfig()).half(), clip_processor)
    embedded = Blip2Processor.from_pretrained(models.embedded_path("blip2"))
    processor = Blip2Processor(embedded.image_processor, embedded.tokenizer, num_query_tokens=32)
    config = Blip2Config(  # Salesforce/blip2-opt-2.7b: ViT-g/14, a 12-layer Q-Former, OPT-2.7b
        vision_config={"hidden_size": 1408, "intermediate_size": 6144, "num_hidden_layers": 39,
                       "num_attention_heads": 16, "image_size": 224, "patch_size": 14},
        qformer_config={"encoder_hidden_size": 1408},
        text_config={"model_type": "opt", "hidden_size": 2560, "ffn_dim": 10240, "num_hidden_layers": 32,
                     "num_attention_heads": 32, "vocab_size": 50272, "word_embed_proj_dim": 2560,
                     "max_position_embeddings": 2048, "eos_token_id": 2, "bos_token_id": 2, "pad_token_id": 1},
        num_query_tokens=32, image_token_index=embedded.tokenizer.convert_tokens_to_ids("<image>"),
    )
    with torch.device(device):
        place(models.BLIP2_HUB_ID, Blip2ForConditionalGeneration(config).half(), processor)
    print(f"stand-ins built and saved in {time.perf_counter() - start:.0f} s")

    mmlab.setup("hub", device=device)
    huggingface_hub.constants.HF_HUB_CACHE = str(cache)  # after setup(), which lets hub mode go online
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    start = time.perf_counter()
    model, clip_processor = models.load_clip()
    print(f"load_clip (ViT-B/32 stand-in, {next(model.parameters()).dtype}): {time.perf_counter() - start:.1f} s")
    photos = [example_photo()] * 256
    embed_images(model, clip_processor, photos[:32], progress=False)  # warm-up
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        for photo in photos[:64]:  # the chapter's way: one image at a time
            inputs = clip_processor(images=photo, return_tensors="pt")["pixel_values"].to(device, model.dtype)
            model.get_image_features(pixel_values=inputs)
    sync()
    loop = 64 / (time.perf_counter() - start)
    start = time.perf_counter()
    embed_images(model, clip_processor, photos, progress=False)
    sync()
    batched = 256 / (time.perf_counter() - start)
    print(f"CLIP images/s: one at a time {loop:.0f}, embed_images {batched:.0f} ({batched / loop:.1f}x)")

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model, processor = models.load_blip2()
    sync()
    print(f"load_blip2 (OPT-2.7b stand-in, {next(model.parameters()).dtype}): {time.perf_counter() - start:.1f} s")
    photo = example_photo()
    caption(model, processor, photo, max_new_tokens=20, min_new_tokens=20)  # warm-up
    for n_images in (1, 8):
        sync()
        start = time.perf_counter()
        texts = caption(model, processor, [photo] * n_images, max_new_tokens=20, min_new_tokens=20, batch_size=8)
        sync()
        print(f"caption, {n_images} image(s) x 20 new tokens: {time.perf_counter() - start:.2f} s "
              f"({len(texts)} texts)")
    sync()
    start = time.perf_counter()
    answer(model, processor, photo, "What is in the picture?")
    sync()
    print(f"answer: {time.perf_counter() - start:.2f} s")
    if device == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--device", default="cuda", choices=("cuda", "mps", "cpu"))
    parser.add_argument("--standins", action="store_true", help="also time hub-size stand-ins (GPU advised)")
    parser.add_argument("--skip-notebooks", action="store_true", help="only the stand-ins")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: run one notebook here
    args = parser.parse_args()
    if args.one:
        return 1 if run_notebook_here(args.one) else 0
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    ok = args.skip_notebooks or run_notebooks(paths, args.device)
    if args.standins:
        standins(args.device)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
