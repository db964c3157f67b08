"""What every training stage shares: its own seeded random streams, scene batches as pixels, the schedule."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np
import torch
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from mmlab.data.scenes import Scene, render_scene, sample_scene


def stage_rng(seed: int, stage: str) -> random.Random:
    """The random stream of one training stage, derived from the recipe's seed and the stage's name.

    Also seeds torch's global generator (initializations, noise) from the same pair. Each stage drawing its
    own stream means a change to one stage (more steps, a bigger batch) leaves every other stage's data alone.
    """
    stage_seed = int.from_bytes(hashlib.sha256(f"{seed}/{stage}".encode()).digest()[:8], "little")
    torch.manual_seed(stage_seed)
    return random.Random(stage_seed)


def to_pixels(images: list) -> torch.Tensor:
    """224x224 RGB images -> normalized pixels (B, 3, 224, 224), as the CLIP/BLIP processors compute them."""
    array = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 255.0  # (B, H, W, 3)
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
    mean, std = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def scene_batch(rng: random.Random, batch_size: int, split: str = "train") -> tuple[list[Scene], torch.Tensor]:
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


@dataclass
class Schedule:
    """Learning rate held flat, then a cosine decay over the last `decay_fraction` of the steps."""

    lr: float
    steps: int
    decay_fraction: float = 0.3

    def __call__(self, step: int) -> float:
        start = int(self.steps * (1 - self.decay_fraction))
        if step < start:
            return self.lr
        progress = (step - start) / max(self.steps - start, 1)
        return self.lr * 0.5 * (1 + np.cos(np.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
