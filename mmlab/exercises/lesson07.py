"""Lesson 07, bridging two frozen models: self-checks and worked solutions."""

from __future__ import annotations

import torch

from mmlab.data.scenes import Scene, SceneObject
from mmlab.exercises import Exercise, Verdict, solved, solved_function, verdict
from mmlab.prefix import OBJECT_SLOTS, PREFIX_LENGTH, prefix_words, slot_name

_BRIDGE = {"query_tokens", "qformer", "language_projection"}


def changed_parts(before: dict, after: dict) -> set[str]:
    """The model parts (first component of a parameter's name) with at least one parameter that changed."""
    return {name.split(".")[0] for name, value in after.items() if not torch.equal(before[name], value)}


def check_changed_parts(fn, before: dict, model) -> Verdict:
    """Exercise 1: `fn(before, after)` names the parts whose parameters changed between two snapshots."""
    after = {name: p.detach() for name, p in model.named_parameters()}
    parts = {name.split(".")[0] for name in after}
    cases = [(before, after)]
    moved = dict(before, **{n: v + 1 for n, v in before.items() if n.startswith("vision_model.")})
    cases.append((before, moved))  # a made-up run in which only the vision tower moved
    for old, new in cases:
        want = changed_parts(old, new)
        try:
            got = fn(old, new)
        except RuntimeError as error:
            hint = ("Compare two tensors with torch.equal(a, b): `a == b` compares element by element, and Python "
                    "cannot tell whether a tensor of many booleans is true." if "ambiguous" in str(error)
                    else f"Your function raised RuntimeError: {error}")
            return verdict(False, "", hint)
        except Exception as error:  # noqa: BLE001 - the learner's code; report what went wrong
            return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
        got = set(got)
        if got == want:
            continue
        if any("." in str(name) for name in got):
            hint = "Name the parts, not the parameters: keep the first component of each name, name.split('.')[0]."
        elif got == parts - want:
            hint = "Those are the parts that stayed the same; return the ones that changed."
        elif got == parts:
            hint = ("Every part counted as changed: compare the values (torch.equal), not the tensor objects; "
                    "`before` holds copies, so `is` and `id` always differ.")
        elif new is not after:
            hint = ("Right for the lesson's run, wrong for a made-up run in which only the vision tower moved: "
                    "compute the parts from the two dictionaries, do not write them down.")
        elif got < want:
            hint = "Some parts that changed are missing: check every parameter, not only the first of each part."
        elif got > want:
            hint = "That includes a part whose parameters did not change: compare every value, with torch.equal."
        else:
            hint = "Some of those parts did not change, and some that changed are missing: compare with torch.equal."
        return verdict(False, "", hint)
    return verdict(True, f"Only {sorted(_BRIDGE & changed_parts(before, after))} changed: the optimizer held "
                   "just the bridge, and the frozen towers got no gradient and no update.", "")


# Exercise 2's scene: one object on the left, one on the right, the middle third empty.
SCENE = Scene((SceneObject("circle", "red", "large", 48, 112, 28), SceneObject("square", "blue", "small", 176, 80, 13)))
QUERY = 10


def check_query_word(word: str) -> Verdict:
    """Exercise 2: the word projected query QUERY carries for SCENE (queries counted from 0)."""
    words = prefix_words(SCENE)
    got = word.strip().lower()
    right = (f"Query {QUERY} carries {slot_name(QUERY)}: {words[QUERY]!r}. The {PREFIX_LENGTH} queries spell the "
             "scene slot by slot.")
    if got == words[QUERY]:
        return verdict(True, right, "")
    if got in words:
        slots = [k for k, w in enumerate(words) if w == got]
        where = ", ".join(f"query {k} ({slot_name(k)})" for k in slots)
        hint = (f"{got!r} is what {where} carries. Query 0 carries the count, then come {len(OBJECT_SLOTS)} words "
                "per third.")
    else:
        hint = (f"{got!r} is not among this scene's {PREFIX_LENGTH} prefix words. Write the prefix out: the count, then size, "
                "colour, shape and position of the left, middle and right third ('none' four times for an empty one).")
    return verdict(False, "", hint)


def check_soft_tokens_shape(shape, model, queries: int | None = None) -> Verdict:
    """Exercise 3: the shape of the projection's output for a batch of 8 images, with `queries` learnt queries
    (default: the model's own number)."""
    q, width = queries or model.config.num_query_tokens, model.config.text_config.hidden_size
    grid = model.config.vision_config.image_size // model.config.vision_config.patch_size
    want, got = (8, q, width), tuple(shape)
    if got == want:
        return verdict(True, f"{want}: {q} soft tokens per image, each as wide as the language model's word "
                       "embeddings, so that torch.cat can put them in front of the text's embeddings.", "")
    if queries and got == (8, model.config.num_query_tokens, width):
        return verdict(False, "", "That is this model's own number of queries; the question changes it.")
    if got in ((q, width), (1, q, width)):
        hint = "One set of soft tokens per image: the batch of 8 comes first."
    elif got == (8, width):
        hint = f"BLIP-2 does not pool the queries: each of the {q} stays a token of its own."
    elif len(got) == 3 and got[1] in (grid * grid, grid * grid + 1):
        hint = (f"{got[1]} is what the vision tower hands over (patches, with or without the class token). The "
                f"Q-Former compresses them into one vector per learnt query.")
    elif got[:2] == (8, q) and got[2:] == (model.config.qformer_config.hidden_size,):
        hint = ("That is the Q-Former's output. The projection maps it to the language model's embedding width "
                "(model.config.text_config.hidden_size).")
    else:
        hint = "(images, queries, width): which width can the frozen language model read?"
    return verdict(False, "", hint)


EXERCISES = {
    1: Exercise(solved_function(changed_parts), "lesson07.check_changed_parts(changed_parts, before, model)", points=2),
    2: Exercise(solved(f'word = "{prefix_words(SCENE)[QUERY]}"  # slot 10: the count, 4 left, 4 middle, then size, '
                       "colour"), "lesson07.check_query_word(word)",
                "Write out the prefix: " + " ".join(prefix_words(SCENE)) + ". Counting from 0:"),
    3: Exercise(solved("shape = (8, 32, model.config.text_config.hidden_size)  # (8, 32, 192): the width stays the OPT's"),
                "lesson07.check_soft_tokens_shape(shape, model, queries=32)",
                "One soft token per learnt query and image, as wide as the language model's word embeddings:"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
