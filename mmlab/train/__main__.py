"""Train the embedded default checkpoints: `python -m mmlab.train {clip,blip2,all} [--short] [--out DIR]`."""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import torch
from transformers import CLIPModel

from mmlab.train.blip2_recipe import Blip2Recipe, train_blip2
from mmlab.train.clip_recipe import ClipRecipe, train_clip, train_clip_quietly

PACKAGE_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def vision_tower(clip_folder: Path) -> torch.nn.Module:
    """The vision tower of a saved CLIP checkpoint (as stored, so runs reproduce), for BLIP-2 to start from."""
    return CLIPModel.from_pretrained(clip_folder, dtype=torch.float32).vision_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mmlab.train", description=__doc__)
    parser.add_argument("model", choices=("clip", "blip2", "all"))
    parser.add_argument("--short", action="store_true", help="a few steps only, to check the recipe runs")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where the checkpoint folders go (default: {PACKAGE_CHECKPOINTS})")
    parser.add_argument("--clip", type=Path, default=None,
                        help="CLIP checkpoint whose vision tower BLIP-2 starts from (default: OUT/clip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of each training process (fixed, for reproducibility); `all` runs two: "
                             "CLIP beside BLIP-2's language model")
    args = parser.parse_args(argv)
    if args.clip is not None and args.model != "blip2":
        parser.error(f"--clip names the CLIP that `blip2` starts from; `{args.model}` trains its own CLIP into "
                     f"OUT/clip. Drop --clip, or run `python -m mmlab.train blip2 --clip {args.clip}`.")
    torch.set_num_threads(args.threads)
    out = args.out or PACKAGE_CHECKPOINTS
    clip_recipe, blip2_recipe = (ClipRecipe.short(), Blip2Recipe.short()) if args.short else (ClipRecipe(), Blip2Recipe())
    clip_recipe.seed = blip2_recipe.seed = args.seed
    start = time.perf_counter()
    if args.model == "clip":
        train_clip(clip_recipe, out / "clip")
        print(f"CLIP trained in {time.perf_counter() - start:.0f} s -> {out / 'clip'}")
        return
    if args.model == "blip2":
        clip_folder = args.clip or out / "clip"
        if not (clip_folder / "model.safetensors").is_file():
            parser.error(f"BLIP-2 starts from a trained CLIP, but {clip_folder} has none: train it first "
                         f"(`python -m mmlab.train clip --out {out}`) or name one with --clip.")
        train_blip2(blip2_recipe, vision_tower(clip_folder), out / "blip2")
    else:
        clip = multiprocessing.get_context("spawn").Process(
            target=train_clip_quietly, args=(clip_recipe, out / "clip", args.threads), name="CLIP training")
        clip.start()
        print(f"CLIP trains in a second process, without a progress bar -> {out / 'clip'}. Meanwhile BLIP-2 "
              "starts with its language model, which needs no image.", flush=True)

        def trained_clip_vision() -> torch.nn.Module:
            clip.join()
            if clip.exitcode != 0:
                raise SystemExit(f"CLIP training failed (exit code {clip.exitcode}; its error is printed above), "
                                 "so BLIP-2 has no vision tower to start from.")
            return vision_tower(out / "clip")

        try:
            train_blip2(blip2_recipe, trained_clip_vision, out / "blip2")
        finally:
            if clip.is_alive():  # BLIP-2 failed or was interrupted: do not leave CLIP training behind
                clip.terminate()
    print(f"BLIP-2 trained in {time.perf_counter() - start:.0f} s -> {out / 'blip2'}"
          + (" (since the start, while CLIP trained beside it)" if args.model == "all" else ""))


if __name__ == "__main__":
    main()
