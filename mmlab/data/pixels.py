"""Scenes as model inputs: normalized pixels as the CLIP and BLIP-2 processors compute them, batches of scenes."""

from __future__ import annotations

import random

import numpy as np
import torch
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from mmlab.data.scenes import Scene, render_scene, sample_scene


def to_pixels(images: list) -> torch.Tensor:
    """224x224 RGB images -> normalized pixels (B, 3, 224, 224), as the CLIP/BLIP processors compute them."""
    array = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 255.0  # (B, H, W, 3)
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
    mean, std = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def scene_batch(rng: random.Random, batch_size: int, split: str = "train") -> tuple[list[Scene], torch.Tensor]:
    """`batch_size` scenes drawn from `rng` and their pixels (B, 3, 224, 224)."""
    scenes = [sample_scene(rng, split=split) for _ in range(batch_size)]
    return scenes, to_pixels([render_scene(s) for s in scenes])


def render_maybe_grey(scenes: list[Scene], rng: random.Random, share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels (B, 3, H, W) with about `share` of the images in greyscale, and which ones are (B,) bool.

    Colour is the easy cue in the scene world: without augmentation a model learns "purple, so not a
    triangle" from the combinations it saw, and fails on a purple triangle. In a grey image only shape
    and size tell objects apart, and it carries no colour target.
    """
    grey = torch.tensor([share > 0 and rng.random() < share for _ in scenes])
    images = [render_scene(s) for s in scenes]
    images = [im.convert("L").convert("RGB") if g else im for im, g in zip(images, grey)]
    return to_pixels(images), grey
