"""What every training stage sets up: its own seeded random stream and its learning-rate schedule."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np
import torch


def stage_rng(seed: int, stage: str) -> random.Random:
    """The random stream of one training stage, derived from the recipe's seed and the stage's name.

    Also seeds torch's global generator (initializations, noise) from the same pair. Each stage drawing its
    own stream means a change to one stage (more steps, a bigger batch) leaves every other stage's data alone.
    """
    stage_seed = int.from_bytes(hashlib.sha256(f"{seed}/{stage}".encode()).digest()[:8], "little")
    torch.manual_seed(stage_seed)
    return random.Random(stage_seed)


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
    """Set every parameter group's learning rate to `lr` times its `lr_scale` (1 where it has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
