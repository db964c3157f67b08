"""Pieces shared by the training recipes: scene batches, slot labels, the warm-up heads, saving."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mmlab.data.scenes import COLORS, SHAPES, SIZES, Scene, render_scene, sample_scene

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_OBJECTS = 3

# Warm-up label spaces; index 0 means "no object in this slot".
SLOT_SHAPES = ("none", *SHAPES)
SLOT_COLORS = ("none", *COLORS)
SLOT_SIZES = ("none", *SIZES)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_pixels(images: list, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """224x224 RGB images -> normalized pixels (B, 3, 224, 224), as the CLIP/BLIP processors compute them."""
    array = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 255.0  # (B, H, W, 3)
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


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


def seed_luminance_filters(patch_embedding: nn.Conv2d, count: int, block: int = 4,
                           std=CLIP_STD) -> None:
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
                w[k, c, row * block:(row + 1) * block, col * block:(col + 1) * block] = -std[c] / block**2


def slot_labels(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    """Per-scene targets: the count, and shape/colour/size of each slot, objects left to right."""
    labels = {"count": torch.tensor([s.count - 1 for s in scenes])}
    for k in range(MAX_OBJECTS):
        objs = [s.objects[k] if k < s.count else None for s in scenes]
        labels[f"shape{k}"] = torch.tensor([SLOT_SHAPES.index(o.shape) if o else 0 for o in objs])
        labels[f"color{k}"] = torch.tensor([SLOT_COLORS.index(o.color) if o else 0 for o in objs])
        labels[f"size{k}"] = torch.tensor([SLOT_SIZES.index(o.size) if o else 0 for o in objs])
    return labels


def patch_labels(scenes: list[Scene], grid: int, image_size: int = 224) -> dict[str, torch.Tensor]:
    """Per-patch targets (B, grid*grid): the object a patch shows (its centre inside the object, or the
    object's centre inside the patch), else "none". Dense labels teach local shape far faster than labels
    of the whole image alone."""
    cell = image_size / grid
    centres = (torch.arange(grid) + 0.5) * cell  # patch centres along one axis
    py, px = torch.meshgrid(centres, centres, indexing="ij")  # (grid, grid)
    out = {name: torch.zeros(len(scenes), grid, grid, dtype=torch.long) for name in ("shape", "color", "size")}
    for b, scene in enumerate(scenes):
        for obj in scene.objects:
            inside = (px - obj.x) ** 2 + (py - obj.y) ** 2 < (0.8 * obj.radius) ** 2
            inside[int(obj.y // cell), int(obj.x // cell)] = True
            out["shape"][b][inside] = SLOT_SHAPES.index(obj.shape)
            out["color"][b][inside] = SLOT_COLORS.index(obj.color)
            out["size"][b][inside] = SLOT_SIZES.index(obj.size)
    return {name: t.flatten(1) for name, t in out.items()}


class SlotHeads(nn.Module):
    """Linear heads that read a scene's content from one pooled vector (the supervised warm-up)."""

    def __init__(self, width: int):
        super().__init__()
        sizes = {"count": MAX_OBJECTS}
        for k in range(MAX_OBJECTS):
            sizes |= {f"shape{k}": len(SLOT_SHAPES), f"color{k}": len(SLOT_COLORS), f"size{k}": len(SLOT_SIZES)}
        self.heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in sizes.items()})
        dense = {"shape": len(SLOT_SHAPES), "color": len(SLOT_COLORS), "size": len(SLOT_SIZES)}
        self.patch_heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in dense.items()})

    def loss(self, pooled: torch.Tensor, patches: torch.Tensor, scenes: list[Scene],
             grey: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """Cross-entropy of the scene heads on `pooled` (B, D) plus the patch heads on `patches` (B, N, D).

        Shape counts double (it is the hard one); greyscale images (`grey`, (B,) bool) have no colour
        target. Returns the loss and the slot heads' shape accuracy.
        """
        labels = slot_labels(scenes)
        dense = patch_labels(scenes, grid=round(patches.shape[1] ** 0.5))
        if grey is not None and grey.any():  # no colour target for a greyscale image
            for name in [n for n in labels if n.startswith("color")]:
                labels[name] = labels[name].masked_fill(grey, -100)
            dense["color"] = dense["color"].masked_fill(grey[:, None], -100)
        total, correct, seen = pooled.new_zeros(()), 0, 0
        for name, head in self.heads.items():
            logits = head(pooled)  # (B, classes)
            weight = 2.0 if name.startswith("shape") else 1.0
            if (labels[name] != -100).any():  # an all-grey batch has no colour target at all
                total = total + weight * nn.functional.cross_entropy(logits, labels[name])
            if name.startswith("shape"):
                present = labels[name] > 0
                correct += (logits.argmax(-1)[present] == labels[name][present]).sum().item()
                seen += present.sum().item()
        for name, head in self.patch_heads.items():
            weight = 2.0 if name == "shape" else 1.0
            logits = head(patches)  # (B, N, classes)
            if (dense[name] != -100).any():
                total = total + weight * nn.functional.cross_entropy(logits.flatten(0, 1), dense[name].flatten())
        return total, correct / max(seen, 1)


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


def warm_up_vision(tower: nn.Module, width: int, steps: int, batch: int, lr: float, rng: random.Random,
                   desc: str, progress: bool, seed_filters: bool = True, grey_share: float = 0.0) -> list[float]:
    """Supervised warm-up of a CLIP or BLIP-2 vision tower: its pooled output must name every object's
    shape, colour and size (left to right), and each patch token the object it shows.

    The learning rate stays flat until late: shape accuracy sits near chance for a while, then rises.
    `grey_share` of the images are shown in greyscale, without colour targets (see `render_maybe_grey`).
    """
    if seed_filters:
        seed_luminance_filters(tower.embeddings.patch_embedding, count=width // 2)
    heads = SlotHeads(width)
    optimizer = torch.optim.AdamW([*tower.parameters(), *heads.parameters()], lr=lr, weight_decay=0.01)
    schedule = Schedule(lr, steps, decay_fraction=0.15)
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    for step in bar:
        set_lr(optimizer, schedule(step))
        scenes = [sample_scene(rng) for _ in range(batch)]
        pixels, grey = render_maybe_grey(scenes, rng, grey_share)
        out = tower(pixel_values=pixels)
        loss, shape_acc = heads.loss(out.pooler_output, out.last_hidden_state[:, 1:], scenes, grey)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", shape_acc=f"{shape_acc:.2f}")
    return losses


def save_checkpoint(model, processor, folder: Path) -> Path:
    """Save as a genuine Hugging Face folder: safetensors in float16, the processor beside it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    # Stored in float16 to halve the files; loaded as float32 by default, which CPUs run fastest.
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"dtype": "float32"}, indent=2) + "\n")
    processor.save_pretrained(folder)
    _slim_bpe_files(folder)
    return folder


def _slim_bpe_files(folder: Path) -> None:
    """Store a CLIP tokenizer as vocab.json + merges.txt (1.4 MB) rather than tokenizer.json (3.6 MB).

    CLIPTokenizer rebuilds its normalizer and pre-tokenizer from these two files, as for the hub's folder.
    """
    config = json.loads((folder / "tokenizer_config.json").read_text())
    if config.get("tokenizer_class") != "CLIPTokenizer":
        return
    model = json.loads((folder / "tokenizer.json").read_text())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False, separators=(",", ":")))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer.json").unlink()
