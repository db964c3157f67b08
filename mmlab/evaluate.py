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

from mmlab.blip2 import clean_answer, format_prompt, generate_text, project_queries
from mmlab.data.scenes import (
    COLORS,
    HELD_OUT_COMBOS,
    QA,
    SHAPES,
    SIZES,
    Scene,
    absent_question,
    as_typed,
    canonical_caption,
    follow_up,
    questions,
    render_scene,
)
from mmlab.data.scenes import scene_from_seed as _scene_from_seed
from mmlab.embed import embed_images, embed_texts
from mmlab.prefix import OBJECT_SLOTS, encode_batch, prefix_ids, prefix_vocabulary, slot_index

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
    texts = generate_text(model, processor, [render_scene(s) for s in scenes], [""] * len(scenes), batch_size=32,
                          max_new_tokens=24, do_sample=False)
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


Asked = list[tuple[Scene, QA, list[tuple[str, str]]]]  # (scene, question, earlier turns)


def vqa_questions(scenes: list[Scene], with_history: bool = False, templates: str = "canonical",
                  typed: bool = False) -> Asked:
    """One question of each type about objects present, per scene (see `vqa_accuracy`)."""
    rng = random.Random(0)
    asked = []
    for scene in scenes:
        qas = questions(scene, rng, templates)
        for i, qa in enumerate(qas):
            history = [(qas[i - 1].question, qas[i - 1].answer)] if with_history and i > 0 else []
            asked.append((scene, _typed(qa, rng) if typed else qa, history))
    return asked


def vqa_accuracy(model, processor, scenes: list[Scene], with_history: bool = False, templates: str = "canonical",
                 typed: bool = False) -> dict[str, float]:
    """Accuracy by question type about objects present, and "overall".

    `with_history` asks each question after one earlier (true) turn; `templates` ("canonical", "train" or
    "heldout", see `mmlab.data.scenes.questions`) and `typed` (as learners type, see `as_typed`) vary the phrasing.
    """
    return _score(model, processor, vqa_questions(scenes, with_history, templates, typed))


def capitals_accuracy(model, processor, scenes: list[Scene]) -> dict[str, float]:
    """`vqa_accuracy` of the canonical questions typed in capitals, without the question mark
    ("WHERE IS THE RED SQUARE"): rare in training (see `as_typed`)."""
    asked = [(s, QA(qa.question.upper().rstrip("?"), qa.answer, qa.kind, qa.subject), h)
             for s, qa, h in vqa_questions(scenes)]
    return _score(model, processor, asked)


def absent_questions(scenes: list[Scene], templates: str = "train") -> Asked:
    """One question per scene about an object it lacks (see `absent_accuracy`)."""
    rng = random.Random(1)
    return [(s, absent_question(s, rng, templates), []) for s in scenes]


def absent_accuracy(model, processor, scenes: list[Scene], templates: str = "train") -> float:
    """How often a question about an object the scene lacks is answered "there is no ..." (naming it)."""
    return _score(model, processor, absent_questions(scenes, templates))["overall"]


def follow_up_questions(scenes: list[Scene]) -> Asked:
    """Per scene, a colour, shape or position question as the earlier (true) turn, then one about the same
    object as "it" ("Where is it?")."""
    rng = random.Random(2)
    asked = []
    for scene in scenes:
        about = [qa for qa in questions(scene, rng) if qa.subject is not None and qa.kind != "yesno"]
        if about:
            first = rng.choice(about)
            asked.append((scene, follow_up(first, rng), [(first.question, first.answer)]))
    return asked


def follow_up_accuracy(model, processor, scenes: list[Scene]) -> float:
    """How often the follow-up of `follow_up_questions` is answered right."""
    return _score(model, processor, follow_up_questions(scenes))["overall"]


def _typed(qa: QA, rng: random.Random) -> QA:
    return QA(as_typed(qa.question, rng), qa.answer, qa.kind, qa.subject)


def _score(model, processor, asked: Asked) -> dict[str, float]:
    """Accuracy by kind and overall: a one-word answer must be the first word, a longer one the whole answer."""
    prompts = [format_prompt(qa.question, history) for _, qa, history in asked]
    answers = generate_text(model, processor, [render_scene(s) for s, _, _ in asked], prompts, batch_size=32,
                            max_new_tokens=8, do_sample=False)
    right = defaultdict(list)
    for (_, qa, _), answer in zip(asked, answers):
        said = clean_answer(answer).split(".")[0].strip()
        said = said if " " in qa.answer else said.split(" ")[0]
        right[qa.kind].append(said == qa.answer)
    return _by_kind(right)


def _by_kind(right: dict[str, list[bool]]) -> dict[str, float]:
    """The share right of each kind, and "overall" over all of them."""
    report = {k: sum(v) / len(v) for k, v in sorted(right.items())}
    report["overall"] = sum(sum(v) for v in right.values()) / max(sum(len(v) for v in right.values()), 1)
    return report


def prefix_accuracy(model, processor, asked: Asked) -> dict[str, float]:
    """The language model alone, given each scene's true prefix (`mmlab.prefix`) instead of the image: accuracy by
    question type (greedy: every answer token and the end must be the likeliest) on `asked` (`vqa_questions`,
    `absent_questions` or `follow_up_questions`, earlier turns included). The ceiling of the bridge."""
    lm, tokenizer, q = model.language_model, processor.tokenizer, model.config.num_query_tokens
    embed, word_ids = lm.get_input_embeddings(), prefix_vocabulary(tokenizer)
    right = defaultdict(list)
    with torch.inference_mode():
        for start in range(0, len(asked), 64):
            chunk = asked[start:start + 64]
            texts = [[(format_prompt(qa.question, history), " " + qa.answer)] for _, qa, history in chunk]
            ids, attention, labels = encode_batch(tokenizer, texts, q, model.config.image_token_index)
            prefix = embed(prefix_ids(word_ids, [scene for scene, _, _ in chunk]))  # (B, Q, D)
            embeds = torch.cat([prefix, embed(ids[:, q:])], dim=1)  # (B, T, D)
            logits = lm(inputs_embeds=embeds, attention_mask=attention).logits[:, :-1]  # (B, T-1, V)
            targets = labels[:, 1:]
            ok = ((logits.argmax(-1) == targets) | (targets == -100)).all(dim=1)  # (B,)
            for (_, qa, _), good in zip(chunk, ok.tolist()):
                right[qa.kind].append(good)
    return _by_kind(right)


def bridge_reading(model, processor, scenes: list[Scene]) -> dict[str, float]:
    """What the bridge reads from each image: the share of prefix slots whose projected query is nearest to the
    right word among the words a prefix can hold, by slot ("count", then each object's OBJECT_SLOTS), and the
    shape again for objects whose colour/shape pair training images show ("shape, trained pairs") or never show
    ("shape, held-out pairs"). Where prefix_accuracy is the language model's ceiling, this says which fact of
    the image the bridge gets wrong."""
    word_ids = prefix_vocabulary(processor.tokenizer)
    vocabulary = torch.tensor(sorted(word_ids.values()))  # (V,) token ids
    right = defaultdict(list)
    with torch.inference_mode():
        words = model.language_model.get_input_embeddings()(vocabulary).float()  # (V, D)
        for start in range(0, len(scenes), 32):
            chunk = scenes[start:start + 32]
            pixels = processor.image_processor([render_scene(s) for s in chunk], return_tensors="pt").pixel_values
            soft = project_queries(model, pixels.to(model.device, model.dtype)).float()  # (B, Q, D)
            read = vocabulary[torch.cdist(soft, words.expand(len(chunk), -1, -1)).argmin(-1).cpu()]  # (B, Q)
            for scene, got, want in zip(chunk, read.tolist(), prefix_ids(word_ids, chunk).tolist()):
                right["count"].append(got[0] == want[0])
                for o in scene.objects:
                    for slot in OBJECT_SLOTS:
                        k = slot_index(o.position, slot)
                        right[slot].append(got[k] == want[k])
                    pairs = "held-out pairs" if (o.color, o.shape) in HELD_OUT_COMBOS else "trained pairs"
                    shape = slot_index(o.position, "shape")
                    right[f"shape, {pairs}"].append(got[shape] == want[shape])
    return {k: sum(v) / len(v) for k, v in right.items()}
