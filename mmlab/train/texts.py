"""The texts of the BLIP-2 recipe: the mix of captions, questions and chats, and the tokenizer trained on them.

The language model is pretrained on text alone, each text behind the scene prefix (`mmlab.prefix`);
the bridge then teaches the Q-Former to produce that prefix from the image. The mix (`TextMix`) decides what
the model can do: captions, questions in many phrasings and typing styles, questions about objects that are
not there, and follow-ups that refer to the previous turn's object as "it".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mmlab.blip2 import format_prompt
from mmlab.data.scenes import (
    Scene,
    absent_question,
    as_typed,
    canonical_caption,
    follow_up,
    questions,
    sample_scene,
    vocabulary_sentences,
)
from mmlab.prefix import Text
from mmlab.tokenization import train_opt_style_tokenizer


@dataclass
class TextMix:
    """Shares of the training texts (each a fraction of its parent)."""

    caption: float = 0.3  # the canonical caption, no question
    absent: float = 0.25  # of questions: about an object the scene lacks ("there is no square")
    history: float = 0.6  # of questions: after one to three earlier turns
    follow_up: float = 0.5  # of those with history: "Where is it?" about the last turn's object
    typed: float = 0.5  # of questions: as a learner types them (case, spelling, punctuation; see as_typed)
    hard_no: float = 0.5  # of "no" questions: colour and shape both present, on different objects
    binding_absent: float = 0.0  # of binding texts (see binding_text): about an object the scene lacks


def training_text(scene: Scene, rng: random.Random, mix: TextMix) -> Text:
    """A caption, or a chat of one to four questions, every answer a target.

    Joined, the pieces are what `format_prompt` writes ("Question: q1 Answer: a1. Question: q2 Answer: a2"), so
    each earlier answer is a target too: a chat teaches up to four answers for the price of one text.
    """
    if rng.random() < mix.caption:
        return [("", canonical_caption(scene))]
    typed = (lambda q: as_typed(q, rng)) if rng.random() < mix.typed else (lambda q: q)
    qas = questions(scene, rng, templates="train", hard_no=mix.hard_no)
    rng.shuffle(qas)
    history = qas[:rng.randint(1, 3)] if rng.random() < mix.history else []
    last = None
    if history and rng.random() < mix.follow_up:
        last = follow_up(history[-1], rng)
    if last is None and rng.random() < mix.absent:
        last = absent_question(scene, rng)
    if last is None:
        last = qas[len(history)] if len(history) < len(qas) else qas[-1]
    # An earlier answer's full stop starts the next piece: only a text's last answer is followed by the end token.
    pieces = [((". " if k else "") + format_prompt(typed(q.question)), " " + q.answer) for k, q in enumerate(history)]
    pieces.append(((". " if pieces else "") + format_prompt(typed(last.question)), " " + last.answer))
    return pieces


def binding_text(scene: Scene, rng: random.Random, mix: TextMix) -> Text:
    """One question about the scene, not its count, and every "no" about a colour and a shape it has on
    different objects: no answer can be told from which words the prefix holds, only by looking up the object
    a word belongs to.

    A `mix.binding_absent` share asks about an object the scene lacks instead (0 draws nothing, as the packaged
    recipe does). Learnt only in the later full mix, "there is no ..." depends on the seed; a share of 0.25 with
    2,400 binding steps is the measured candidate for the next recipe (docs/embedded-default.md).
    """
    if mix.binding_absent and rng.random() < mix.binding_absent:
        qa = absent_question(scene, rng)
    else:
        qa = rng.choice([qa for qa in questions(scene, rng, templates="train", hard_no=1.0) if qa.kind != "count"])
    return [(format_prompt(qa.question), " " + qa.answer)]


def build_tokenizer(seed: int, vocab_size: int, scenes: int = 6000, mix: TextMix | None = None):
    """An OPT-style byte-level BPE trained on English prose plus `scenes` scenes' worth of training texts.

    Held-out question templates never appear in its training text either.
    """
    rng, mix = random.Random(seed), mix or TextMix()
    scene_text = []
    for _ in range(scenes):
        scene = sample_scene(rng)
        scene_text.append("".join(prompt + target for prompt, target in training_text(scene, rng, mix)))
    return train_opt_style_tokenizer(scene_text + vocabulary_sentences(), vocab_size=vocab_size)
