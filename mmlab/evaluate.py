"""How good is a CLIP or BLIP-2 on the scene world? Held-out metrics shared by the benchmark and the tests.

Held-out scenes come from seeds the training never draws (training uses `random.Random(seed)` streams;
these use `scene_from_seed` on a separate seed range), and optionally from colour/shape combinations
never shown in training (`split="heldout"`).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass

import torch

from mmlab.blip2 import format_prompt, generate_text
from mmlab.data.scenes import COLORS, SHAPES, SIZES, Scene, canonical_caption, questions, render_scene
from mmlab.data.scenes import scene_from_seed as _scene_from_seed
from mmlab.embed import embed_images, embed_texts

HELD_OUT_SEEDS = 10_000_000  # evaluation seeds start here


def held_out_scenes(n: int, *, n_objects: int | None = None, split: str = "any", unique: bool = False) -> list[Scene]:
    """`n` evaluation scenes; `unique=True` keeps only scenes whose canonical captions differ."""
    scenes, seen, seed = [], set(), HELD_OUT_SEEDS
    while len(scenes) < n:
        scene = _scene_from_seed(seed, n_objects=n_objects, split=split)
        seed += 1
        if unique and canonical_caption(scene) in seen:
            continue
        seen.add(canonical_caption(scene))
        scenes.append(scene)
    return scenes


# --- CLIP -----------------------------------------------------------------------------------------


def clip_embeddings(model, processor, images=None, texts=None) -> torch.Tensor:
    """Unit-length float32 embeddings of images or texts, (N, D), computed in float32 (repeatable figures)."""
    if images is not None:
        return embed_images(model, processor, images, progress=False, dtype=torch.float32)
    return embed_texts(model, processor, texts, progress=False, dtype=torch.float32)


def zero_shot_accuracy(model, processor, scenes: list[Scene], attribute: str) -> float:
    """Pick the shape ("a photo of a circle") or the colour ("a photo of a red shape") of one-object scenes."""
    classes = list(SHAPES) if attribute == "shape" else list(COLORS)
    template = "a photo of a {}" if attribute == "shape" else "a photo of a {} shape"
    text = clip_embeddings(model, processor, texts=[template.format(c) for c in classes])
    image = clip_embeddings(model, processor, images=[render_scene(s) for s in scenes])
    predicted = (image @ text.T).argmax(-1)
    truth = torch.tensor([classes.index(getattr(s.objects[0], attribute)) for s in scenes])
    return (predicted.cpu() == truth).float().mean().item()


def recall_at_1(model, processor, scenes: list[Scene]) -> float:
    """Text -> image retrieval: how often a scene's caption ranks its own image first."""
    text = clip_embeddings(model, processor, texts=[canonical_caption(s) for s in scenes])
    image = clip_embeddings(model, processor, images=[render_scene(s) for s in scenes])
    best = (text @ image.T).argmax(-1).cpu()
    return (best == torch.arange(len(scenes))).float().mean().item()


def similarity_margin(model, processor, scenes: list[Scene], captions: list[str] | None = None) -> float:
    """Mean of the diagonal minus the largest off-diagonal cosine of an image x caption matrix."""
    captions = captions or [canonical_caption(s) for s in scenes]
    sim = clip_embeddings(model, processor, images=[render_scene(s) for s in scenes]) @ (
        clip_embeddings(model, processor, texts=captions).T
    )
    off = sim[~torch.eye(len(scenes), dtype=torch.bool)]
    return (sim.diagonal().mean() - off.max()).item()


# --- BLIP-2 ---------------------------------------------------------------------------------------


def generate_texts(model, processor, images, prompts: list[str], max_new_tokens: int = 24,
                   batch_size: int = 32) -> list[str]:
    """Greedy generation for (image, prompt) pairs in batches; only the new text."""
    out = []
    for start in range(0, len(prompts), batch_size):
        out += generate_text(model, processor, images[start:start + batch_size], prompts[start:start + batch_size],
                             max_new_tokens=max_new_tokens, do_sample=False)
    return out


_OBJECT = re.compile(rf"\b({'|'.join(SIZES)}) ({'|'.join(COLORS)}) ({'|'.join(SHAPES)})\b")


def caption_scores(scene: Scene, text: str) -> tuple[int, int]:
    """(correct, total) attributes of a caption: the count, then size, colour and shape of each object in order."""
    found = _OBJECT.findall(text)
    correct = int(len(found) == scene.count)
    for k, obj in enumerate(scene.objects):
        if k < len(found):
            correct += sum(a == b for a, b in zip(found[k], (obj.size, obj.color, obj.shape)))
    return correct, 1 + 3 * scene.count


@dataclass
class CaptionReport:
    attribute_accuracy: float
    exact: float
    exact_by_count: dict[int, float]
    examples: list[tuple[str, str]]  # (truth, generated)


def caption_report(model, processor, scenes: list[Scene]) -> CaptionReport:
    texts = generate_texts(model, processor, [render_scene(s) for s in scenes], [""] * len(scenes))
    correct = total = 0
    exact = defaultdict(list)
    for scene, text in zip(scenes, texts):
        c, t = caption_scores(scene, text)
        correct, total = correct + c, total + t
        exact[scene.count].append(text.rstrip(".") == canonical_caption(scene))
    flat = [e for v in exact.values() for e in v]
    return CaptionReport(
        correct / total, sum(flat) / len(flat),
        {k: sum(v) / len(v) for k, v in sorted(exact.items())},
        [(canonical_caption(s), t) for s, t in zip(scenes[:5], texts[:5])],
    )


def vqa_accuracy(model, processor, scenes: list[Scene], with_history: bool = False) -> dict[str, float]:
    """Accuracy by question type; `with_history` asks each question after one earlier (true) turn."""
    rng = random.Random(0)
    images, prompts, truths, kinds = [], [], [], []
    for scene in scenes:
        qas = questions(scene, rng)
        for i, qa in enumerate(qas):
            history = [(qas[i - 1].question, qas[i - 1].answer)] if with_history and i > 0 else []
            images.append(render_scene(scene))
            prompts.append(format_prompt(qa.question, history))
            truths.append(qa.answer)
            kinds.append(qa.kind)
    answers = generate_texts(model, processor, images, prompts, max_new_tokens=4)
    right = defaultdict(list)
    for kind, truth, answer in zip(kinds, truths, answers):
        first = answer.split(".")[0].strip().split(" ")[0] if answer else ""
        right[kind].append(first == truth)
    report = {k: sum(v) / len(v) for k, v in sorted(right.items())}
    report["overall"] = sum(sum(v) for v in right.values()) / sum(len(v) for v in right.values())
    return report

