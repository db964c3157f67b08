"""The scene prefix of the embedded BLIP-2: a scene spelled as `PREFIX_LENGTH` words, one per learnt query.

The count, then the size, colour, shape and position of the object in the left, the middle and the right third
("none" for each slot of an empty third). The recipe pretrains the language model on texts behind this prefix and
teaches the bridge to produce it from the image (docs/embedded-default.md); lesson 07, its exercises and the
diagnostics read it too.
"""

from __future__ import annotations

import torch

from mmlab.data.scenes import COLORS, NUMBERS, POSITIONS, SHAPES, SIZES, Scene

OBJECT_SLOTS = ("size", "color", "shape", "position")  # a third's prefix words, in order
PREFIX_LENGTH = 1 + len(OBJECT_SLOTS) * len(POSITIONS)  # the count, then one word per slot of each third

Text = list[tuple[str, str]]  # (prompt, target) pieces, joined in order; the model learns every target


def slot_index(position: str, attribute: str) -> int:
    """The prefix slot that holds `attribute` (one of OBJECT_SLOTS) of the object in third `position`."""
    return 1 + len(OBJECT_SLOTS) * POSITIONS.index(position) + OBJECT_SLOTS.index(attribute)


def slot_name(k: int) -> str:
    """What prefix slot `k` holds, in words: "the count", "the colour of the object in the left third"."""
    if k == 0:
        return "the count"
    third, attribute = divmod(k - 1, len(OBJECT_SLOTS))
    word = {"color": "colour"}.get(OBJECT_SLOTS[attribute], OBJECT_SLOTS[attribute])
    return f"the {word} of the object in the {POSITIONS[third]} third"


def prefix_words(scene: Scene) -> list[str]:
    """The words that spell a scene, slot by slot (see the module's docstring).

    Slots by region, not by rank: the query for "the left third" can learn to look there, whereas "the
    second object from the left" would make each query first find and count all the objects.
    """
    words = [NUMBERS[scene.count]]
    for third in POSITIONS:
        o = next((o for o in scene.objects if o.position == third), None)
        words += [getattr(o, slot) for slot in OBJECT_SLOTS] if o else ["none"] * len(OBJECT_SLOTS)
    return words


def prefix_vocabulary(tokenizer) -> dict[str, int]:
    """The token id of every word a prefix can hold (each is one token, with its leading space)."""
    words = {*NUMBERS, *SIZES, *COLORS, *SHAPES, *POSITIONS, "none"}
    ids = {w: tokenizer(" " + w, add_special_tokens=False).input_ids for w in words}
    if any(len(i) != 1 for i in ids.values()):
        raise ValueError(f"every prefix word must be one token for this tokenizer: {ids}")
    return {w: i[0] for w, i in ids.items()}


def prefix_ids(word_ids: dict[str, int], scenes: list[Scene]) -> torch.Tensor:
    """(B, PREFIX_LENGTH) token ids of each scene's prefix words; `word_ids` from `prefix_vocabulary`."""
    return torch.tensor([[word_ids[w] for w in prefix_words(s)] for s in scenes])


def encode_batch(tokenizer, texts: list[Text], num_queries: int, image_token_id: int):
    """Token ids [image x Q][</s> prompt target prompt target ... </s>], right-padded, labels on the targets.

    The Q image placeholders are where the prefix (or the projected queries) goes. Returns the input ids,
    the attention mask and the labels (-100 where nothing is predicted), each (B, T).
    """
    rows, labels = [], []
    for pieces in texts:
        row, label = [image_token_id] * num_queries + [tokenizer.bos_token_id], [-100] * (num_queries + 1)
        for prompt, target in pieces:
            prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids if prompt else []
            target_ids = tokenizer(target, add_special_tokens=False).input_ids
            row += prompt_ids + target_ids
            label += [-100] * len(prompt_ids) + target_ids
        rows.append(row + [tokenizer.eos_token_id])
        labels.append(label + [tokenizer.eos_token_id])
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    label_ids = torch.tensor([r + [-100] * (width - len(r)) for r in labels])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return input_ids, attention, label_ids
