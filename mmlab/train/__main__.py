"""Train the embedded default checkpoints: `python -m mmlab.train {clip,blip2,all} [--short] [--out DIR]`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import CLIPModel

from mmlab.train.blip2 import Blip2Recipe, train_blip2
from mmlab.train.clip import ClipRecipe, train_clip

PACKAGE_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mmlab.train", description=__doc__)
    parser.add_argument("model", choices=("clip", "blip2", "all"))
    parser.add_argument("--short", action="store_true", help="a few steps only, to check the recipe runs")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where the checkpoint folders go (default: {PACKAGE_CHECKPOINTS})")
    parser.add_argument("--clip", type=Path, default=None,
                        help="CLIP checkpoint whose vision tower BLIP-2 starts from (default: OUT/clip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (fixed, for reproducibility)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out or PACKAGE_CHECKPOINTS
    if args.model in ("clip", "all"):
        recipe = ClipRecipe.short() if args.short else ClipRecipe()
        recipe.seed = args.seed
        start = time.perf_counter()
        train_clip(recipe, out / "clip")
        print(f"CLIP trained in {time.perf_counter() - start:.0f} s -> {out / 'clip'}")
    if args.model in ("blip2", "all"):
        # BLIP-2 starts from the vision tower of the saved CLIP checkpoint (as stored, so runs reproduce)
        clip_folder = args.clip or out / "clip"
        if not (clip_folder / "model.safetensors").is_file():
            parser.error(f"BLIP-2 starts from a trained CLIP, but {clip_folder} has none: train it first "
                         f"(`python -m mmlab.train clip --out {out}`) or name one with --clip.")
        clip = CLIPModel.from_pretrained(clip_folder, dtype=torch.float32)
        recipe = Blip2Recipe.short() if args.short else Blip2Recipe()
        recipe.seed = args.seed
        start = time.perf_counter()
        train_blip2(recipe, clip.vision_model, out / "blip2")
        print(f"BLIP-2 trained in {time.perf_counter() - start:.0f} s -> {out / 'blip2'}")

if __name__ == "__main__":
    main()
