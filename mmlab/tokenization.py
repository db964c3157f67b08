"""Tokenizers of the embedded default, rebuilt or trained offline.

- `clip_tokenizer()`: OpenAI CLIP's byte-level BPE, rebuilt from the merges that open_clip ships.
  It is the tokenizer of `openai/clip-vit-base-patch32`, id for id.
- `train_opt_style_tokenizer()`: a GPT-2-style byte-level BPE (space shown as `Ġ`) with OPT's special
  tokens, trained on English prose from Python's own documentation plus the scene world's words.
"""

from __future__ import annotations

import gzip
import json
import pydoc_data.topics

from transformers import CLIPTokenizer, GPT2Tokenizer

CLIP_CONTEXT_LENGTH = 77
CLIP_NUM_MERGES = 49152 - 256 - 2  # open_clip's vocabulary budget: 49,408 ids in all
OPT_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3, as in OPT
IMAGE_TOKEN = "<image>"


def clip_tokenizer() -> CLIPTokenizer:
    """OpenAI CLIP's tokenizer: 256 byte symbols, the same with `</w>`, 48,894 merges, start and end."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as merges_file:
        lines = merges_file.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : CLIP_NUM_MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_CONTEXT_LENGTH)


def english_corpus() -> list[str]:
    """English prose that ships with Python: the language reference's help topics."""
    return [text for text in pydoc_data.topics.topics.values()]


def train_opt_style_tokenizer(extra_text: list[str], vocab_size: int = 4096, *, english: bool = True,
                              min_frequency: int = 2) -> GPT2Tokenizer:
    """Train a byte-level BPE like GPT-2's on `extra_text` (plus `english_corpus()` unless `english=False`) and
    wrap it with OPT's special tokens and `<image>`.

    Like OPT's tokenizer it starts every text with `</s>` and pads with `<pad>`.
    """
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        (english_corpus() if english else []) + extra_text, vocab_size=vocab_size, min_frequency=min_frequency,
        special_tokens=list(OPT_SPECIAL_TOKENS), show_progress=False,
    )
    tokenizer = GPT2Tokenizer(
        vocab=bpe.get_vocab(), merges=_merges_of(bpe), bos_token="</s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", add_bos_token=True, model_max_length=256,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return tokenizer


def _merges_of(bpe) -> list[tuple[str, str]]:
    """The ordered merges of a trained `tokenizers` BPE (serialized as pairs or as "a b" strings)."""
    merges = json.loads(bpe.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
