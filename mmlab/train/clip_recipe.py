"""Recipe for the embedded CLIP: a supervised warm-up of the vision tower, then contrastive training.

Why the warm-up: trained contrastively from scratch on the scene world, CLIP learns colour (which
tells most pairs in a batch apart) and never shape. Naming each object's shape, colour and size from
the image first gives the vision tower the features; contrastive training then aligns the text tower.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

from mmlab.data.pixels import render_maybe_grey
from mmlab.data.scenes import HELD_OUT_COMBOS, IMAGE_SIZE, PATCH, SHAPES, Scene, caption, sample_scene
from mmlab.mode import seed_everything
from mmlab.tokenization import CLIP_CONTEXT_LENGTH, clip_tokenizer
from mmlab.train.checkpoint import save_checkpoint
from mmlab.train.stage import Schedule, set_lr, stage_rng
from mmlab.train.warmup import WarmUp, warm_up_vision


@dataclass
class ClipRecipe:
    seed: int = 0
    image_size: int = IMAGE_SIZE
    patch_size: int = PATCH
    width: int = 128  # vision tower
    text_width: int = 96  # the token embedding (49,408 x text_width) dominates the file size
    layers: int = 4
    heads: int = 4
    projection_dim: int = 512  # as ViT-B/32: the embeddings a learner sees are [1, 512]
    warmup_steps: int = 1500  # supervised: name shape, colour and size of each object
    warmup_batch: int = 64
    warmup_lr: float = 1e-3
    contrastive_steps: int = 800
    contrastive_batch: int = 64
    contrastive_lr: float = 5e-4
    vision_lr_scale: float = 0.5  # the warmed-up vision tower moves more slowly
    hard_negatives: float = 0.5  # share of each batch in groups that differ only in one object's shape
    grey_share: float = 0.2  # images shown in greyscale (with colourless captions), so shape stands alone
    weight_decay: float = 0.01
    contrastive_decay_fraction: float = 0.5  # of the contrastive steps, the last ones with a cosine decay

    @classmethod
    def short(cls) -> ClipRecipe:
        """A few steps of each stage: for tests of the recipe itself."""
        return cls(warmup_steps=6, contrastive_steps=6, warmup_batch=16, contrastive_batch=16)


def build_clip(recipe: ClipRecipe) -> tuple[CLIPModel, CLIPProcessor]:
    """A randomly initialized CLIP with ViT-B/32's input and output shapes but narrow towers."""
    tokenizer = clip_tokenizer()
    def tower(width: int) -> dict:
        return {"hidden_size": width, "intermediate_size": 4 * width, "num_hidden_layers": recipe.layers,
                    "num_attention_heads": recipe.heads}

    config = CLIPConfig(
        text_config=dict(
            **tower(recipe.text_width), vocab_size=len(tokenizer), max_position_embeddings=CLIP_CONTEXT_LENGTH,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(**tower(recipe.width), image_size=recipe.image_size, patch_size=recipe.patch_size),
        projection_dim=recipe.projection_dim,
    )
    torch.manual_seed(recipe.seed)
    model = CLIPModel(config)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer)
    return model, processor


def shape_contrast_batch(rng: random.Random, batch: int, hard: float) -> list[Scene]:
    """Random scenes, plus groups of scenes identical but for one object's shape (hard negatives).

    In random batches colour tells most pairs apart, and CLIP's text side then barely learns shape words;
    pairs that differ only in shape make the shape words matter.
    """
    scenes = [sample_scene(rng) for _ in range(batch - int(batch * hard))]
    while len(scenes) < batch:
        base = sample_scene(rng)
        k = rng.randrange(base.count)
        for shape in SHAPES:
            obj = replace(base.objects[k], shape=shape)
            if (obj.color, shape) not in HELD_OUT_COMBOS:
                scenes.append(replace(base, objects=base.objects[:k] + (obj,) + base.objects[k + 1:]))
    return scenes[:batch]


def train_contrastive(model: CLIPModel, processor: CLIPProcessor, recipe: ClipRecipe,
                      progress: bool = True) -> list[float]:
    rng = stage_rng(recipe.seed, "contrastive")
    vision = {id(p) for p in model.vision_model.parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) in vision], "lr_scale": recipe.vision_lr_scale},
        {"params": [p for p in model.parameters() if id(p) not in vision], "lr_scale": 1.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=recipe.contrastive_lr, weight_decay=recipe.weight_decay)
    schedule = Schedule(recipe.contrastive_lr, recipe.contrastive_steps, recipe.contrastive_decay_fraction)
    losses = []
    bar = tqdm(range(recipe.contrastive_steps), desc="CLIP contrastive", disable=not progress)
    for step in bar:
        set_lr(optimizer, schedule(step))
        scenes = shape_contrast_batch(rng, recipe.contrastive_batch, recipe.hard_negatives)
        pixels, grey = render_maybe_grey(scenes, rng, recipe.grey_share)
        captions = [caption(s, rng, with_color=not g) for s, g in zip(scenes, grey.tolist())]
        text = processor.tokenizer(captions, padding=True, return_tensors="pt")
        loss = model(**text, pixel_values=pixels, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


def train_clip(recipe: ClipRecipe, out: Path | None = None, progress: bool = True):
    """Run the whole recipe; save to `out` when given. Returns the model, processor and loss curves."""
    seed_everything(recipe.seed)
    model, processor = build_clip(recipe)
    model.train()
    warm_up = WarmUp(recipe.warmup_steps, recipe.warmup_batch, recipe.warmup_lr, grey_share=recipe.grey_share,
                     weight_decay=recipe.weight_decay)
    curves = {"warmup": warm_up_vision(model.vision_model, warm_up, stage_rng(recipe.seed, "warm-up"),
                                       "CLIP vision warm-up", progress)}
    curves["contrastive"] = train_contrastive(model, processor, recipe, progress)
    model.eval()
    if out is not None:
        save_checkpoint(model, processor, out)
    return model, processor, curves


def train_clip_quietly(recipe: ClipRecipe, out: Path, threads: int) -> None:
    """Train and save with `threads` CPU threads and no progress bars, then print the time: what the second
    process of `python -m mmlab.train all` runs (a spawned process starts with torch's default thread count)."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    train_clip(recipe, out, progress=False)
    print(f"CLIP trained in {time.perf_counter() - start:.0f} s -> {out}", flush=True)
