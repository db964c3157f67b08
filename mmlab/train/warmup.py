"""Stage 1 of both recipes: a supervised warm-up of a vision tower on the scene world's labels.

The tower's pooled output must name each object slot's shape, colour and size (objects left to right) and
each patch token the object it shows. Contrastive training or a frozen language model alone would teach it
colour and never shape; named targets give it the features first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.image_utils import OPENAI_CLIP_STD

from mmlab.data.pixels import render_maybe_grey
from mmlab.data.scenes import COLORS, IMAGE_SIZE, MAX_OBJECTS, SHAPES, SIZES, Scene, sample_scene
from mmlab.train.stage import Schedule, set_lr

# Label spaces; index 0 means "no object in this slot".
SLOT_SHAPES = ("none", *SHAPES)
SLOT_COLORS = ("none", *COLORS)
SLOT_SIZES = ("none", *SIZES)


@dataclass
class WarmUp:
    """Settings of one warm-up run."""

    steps: int
    batch: int
    lr: float
    grey_share: float = 0.0  # images shown in greyscale, without colour targets (see render_maybe_grey)
    seed_filters: bool = True  # start half the patch filters as dark-pixel detectors (see seed_luminance_filters)
    weight_decay: float = 0.01
    decay_fraction: float = 0.15  # the learning rate stays flat until late: shape accuracy rises late
    shape_weight: float = 2.0  # shape is the hard attribute: its losses count this much
    inside_fraction: float = 0.8  # a patch shows an object when its centre is this close (in radii)


def seed_luminance_filters(patch_embedding: nn.Conv2d, count: int, block: int = 4) -> None:
    """Start `count` patch-embedding filters as dark-pixel detectors over `block` x `block` sub-squares.

    Every scene object is darker than its background in R+G+B, whatever its colour, so these filters give
    the encoder a coarse, colour-blind silhouette of each patch from the first step. Shape is what a
    from-scratch ViT otherwise learns last; training still changes these filters like all the others.
    """
    out, channels, p, _ = patch_embedding.weight.shape  # (D, 3, P, P)
    per_side = p // block
    count = min(count, per_side * per_side, out)
    with torch.no_grad():
        w = patch_embedding.weight
        for k in range(count):
            row, col = divmod(k, per_side)
            w[k] = 0.0
            for c in range(channels):  # normalized pixel x = (v - mean) / std, so v = x * std + mean
                w[k, c, row * block:(row + 1) * block, col * block:(col + 1) * block] = -OPENAI_CLIP_STD[c] / block**2


def slot_labels(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    """Per-scene targets: the count, and shape/colour/size of each slot, objects left to right."""
    labels = {"count": torch.tensor([s.count - 1 for s in scenes])}
    for k in range(MAX_OBJECTS):
        objs = [s.objects[k] if k < s.count else None for s in scenes]
        labels[f"shape{k}"] = torch.tensor([SLOT_SHAPES.index(o.shape) if o else 0 for o in objs])
        labels[f"color{k}"] = torch.tensor([SLOT_COLORS.index(o.color) if o else 0 for o in objs])
        labels[f"size{k}"] = torch.tensor([SLOT_SIZES.index(o.size) if o else 0 for o in objs])
    return labels


def patch_labels(scenes: list[Scene], grid: int, inside_fraction: float = 0.8) -> dict[str, torch.Tensor]:
    """Per-patch targets (B, grid*grid): the object a patch shows (its centre within `inside_fraction` of the
    object's radius, or the object's centre inside the patch), else "none". Dense labels teach local shape far
    faster than labels of the whole image alone."""
    cell = IMAGE_SIZE / grid
    centres = (torch.arange(grid) + 0.5) * cell  # patch centres along one axis
    py, px = torch.meshgrid(centres, centres, indexing="ij")  # (grid, grid)
    out = {name: torch.zeros(len(scenes), grid, grid, dtype=torch.long) for name in ("shape", "color", "size")}
    for b, scene in enumerate(scenes):
        for obj in scene.objects:
            inside = (px - obj.x) ** 2 + (py - obj.y) ** 2 < (inside_fraction * obj.radius) ** 2
            inside[int(obj.y // cell), int(obj.x // cell)] = True
            out["shape"][b][inside] = SLOT_SHAPES.index(obj.shape)
            out["color"][b][inside] = SLOT_COLORS.index(obj.color)
            out["size"][b][inside] = SLOT_SIZES.index(obj.size)
    return {name: t.flatten(1) for name, t in out.items()}


class SlotHeads(nn.Module):
    """Linear heads that read a scene's content from one pooled vector, and each patch's object from its token."""

    def __init__(self, width: int, shape_weight: float = 2.0, inside_fraction: float = 0.8):
        super().__init__()
        sizes = {"count": MAX_OBJECTS}
        for k in range(MAX_OBJECTS):
            sizes |= {f"shape{k}": len(SLOT_SHAPES), f"color{k}": len(SLOT_COLORS), f"size{k}": len(SLOT_SIZES)}
        self.heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in sizes.items()})
        dense = {"shape": len(SLOT_SHAPES), "color": len(SLOT_COLORS), "size": len(SLOT_SIZES)}
        self.patch_heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in dense.items()})
        self.shape_weight, self.inside_fraction = shape_weight, inside_fraction

    def loss(self, pooled: torch.Tensor, patches: torch.Tensor, scenes: list[Scene],
             grey: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """Cross-entropy of the scene heads on `pooled` (B, D) plus the patch heads on `patches` (B, N, D).

        Shape counts `shape_weight` times; greyscale images (`grey`, (B,) bool) have no colour target.
        Returns the loss and the slot heads' shape accuracy.
        """
        labels = slot_labels(scenes)
        dense = patch_labels(scenes, round(patches.shape[1] ** 0.5), self.inside_fraction)
        if grey is not None and grey.any():  # no colour target for a greyscale image
            for name in [n for n in labels if n.startswith("color")]:
                labels[name] = labels[name].masked_fill(grey, -100)
            dense["color"] = dense["color"].masked_fill(grey[:, None], -100)
        total, correct, seen = pooled.new_zeros(()), 0, 0
        for name, head in self.heads.items():
            logits = head(pooled)  # (B, classes)
            weight = self.shape_weight if name.startswith("shape") else 1.0
            if (labels[name] != -100).any():  # an all-grey batch has no colour target at all
                total = total + weight * nn.functional.cross_entropy(logits, labels[name])
            if name.startswith("shape"):
                present = labels[name] > 0
                correct += (logits.argmax(-1)[present] == labels[name][present]).sum().item()
                seen += present.sum().item()
        for name, head in self.patch_heads.items():
            weight = self.shape_weight if name == "shape" else 1.0
            logits = head(patches)  # (B, N, classes)
            if (dense[name] != -100).any():
                total = total + weight * nn.functional.cross_entropy(logits.flatten(0, 1), dense[name].flatten())
        return total, correct / max(seen, 1)


def warm_up_vision(tower: nn.Module, settings: WarmUp, rng: random.Random, desc: str,
                   progress: bool = True) -> list[float]:
    """Train a CLIP or BLIP-2 vision tower (with throw-away `SlotHeads`) to name every object; the loss curve."""
    width = tower.config.hidden_size
    if settings.seed_filters:
        seed_luminance_filters(tower.embeddings.patch_embedding, count=width // 2)
    heads = SlotHeads(width, settings.shape_weight, settings.inside_fraction)
    optimizer = torch.optim.AdamW([*tower.parameters(), *heads.parameters()], lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    schedule = Schedule(settings.lr, settings.steps, settings.decay_fraction)
    losses = []
    bar = tqdm(range(settings.steps), desc=desc, disable=not progress)
    for step in bar:
        set_lr(optimizer, schedule(step))
        scenes = [sample_scene(rng) for _ in range(settings.batch)]
        pixels, grey = render_maybe_grey(scenes, rng, settings.grey_share)
        out = tower(pixel_values=pixels)
        loss, shape_acc = heads.loss(out.pooler_output, out.last_hidden_state[:, 1:], scenes, grey)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", shape_acc=f"{shape_acc:.2f}")
    return losses
