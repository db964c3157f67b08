"""Train the from-scratch `mmlab.vit.VisionTransformer` on the scene world: a tiny ViT in a few seconds (lesson 01).

Large single objects drawn at 224 px are shrunk to 48 px; the model names their colour, shape or count.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mmlab.data import scenes
from mmlab.vit import VisionTransformer, ViTConfig


@dataclass
class TinyTrainConfig:
    task: str = "shape"  # what to name in one-object scenes: "color", "shape", or "count" (1-3 objects)
    image_size: int = 48  # scenes (large objects only) are drawn at 224 px and shrunk to this
    patch_size: int = 6  # 8x8 grid of patches
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    num_train: int = 2048  # scenes rendered once, then batches drawn from them
    num_eval: int = 256
    max_seconds: float = 45.0  # stop early if the CPU is slow
    threads: int = 1  # a model this small runs fastest on one thread (no waiting between threads)
    seed: int = 0


@dataclass
class TinyTrainResult:
    model: VisionTransformer
    labels: tuple[str, ...]  # class names, index = class id
    losses: list[float]  # training loss per step
    eval_accuracy: float  # on scenes not seen in training
    seconds: float
    eval_images: torch.Tensor = field(repr=False)  # (num_eval, 3, S, S) in 0..1, for attention maps
    eval_targets: torch.Tensor = field(repr=False)  # (num_eval,)


def scene_dataset(task: str, n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """n scene images (n, 3, S, S) scaled 0-1, with their class ids for `task`, and the class names."""
    labels = {"color": tuple(scenes.COLORS), "shape": scenes.SHAPES, "count": scenes.NUMBERS[1:4]}
    if task not in labels:
        raise ValueError(f"Unknown task {task!r}: choose one of {sorted(labels)}.")
    rng = random.Random(seed)
    images, targets = [], []
    n_objects = None if task == "count" else 1
    for _ in range(n):
        scene = scenes.sample_scene(rng, n_objects=n_objects)
        while any(o.size != "large" for o in scene.objects):  # small shapes are a few pixels once shrunk
            scene = scenes.sample_scene(rng, n_objects=n_objects)
        obj = scene.objects[0]
        target = {"color": obj.color, "shape": obj.shape, "count": scenes.NUMBERS[scene.count]}[task]
        image = scenes.render_scene(scene).resize((image_size, image_size), Image.Resampling.BICUBIC)
        images.append(torch.from_numpy(np.array(image)))  # (S, S, 3) uint8
        targets.append(labels[task].index(target))
    pixels = torch.stack(images).permute(0, 3, 1, 2).float() / 255  # (n, 3, S, S)
    return pixels, torch.tensor(targets), labels[task]


def train_tiny_vit(config: TinyTrainConfig | None = None) -> TinyTrainResult:
    """Train a tiny ViT from scratch to name an attribute of scene-world images; returns the loss curve."""
    cfg = config or TinyTrainConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: TinyTrainConfig) -> TinyTrainResult:
    torch.manual_seed(cfg.seed)
    x_train, y_train, labels = scene_dataset(cfg.task, cfg.num_train, cfg.image_size, cfg.seed)
    x_eval, y_eval, _ = scene_dataset(cfg.task, cfg.num_eval, cfg.image_size, cfg.seed + 1)
    model = VisionTransformer(ViTConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers, num_heads=cfg.num_heads, intermediate_size=4 * cfg.hidden_size,
        hidden_act="gelu", patch_bias=True, num_classes=len(labels),
    ))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(cfg.seed)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in range(cfg.steps):
        idx = torch.randint(len(x_train), (cfg.batch_size,), generator=generator)
        loss = F.cross_entropy(model(x_train[idx]).logits, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if time.perf_counter() - start > cfg.max_seconds:
            break
    model.eval()
    with torch.inference_mode():
        accuracy = (model(x_eval).logits.argmax(-1) == y_eval).float().mean().item()
    return TinyTrainResult(model, labels, losses, accuracy, time.perf_counter() - start, x_eval, y_eval)
