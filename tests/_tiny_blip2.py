"""A tiny random BLIP-2 (OPT language model, byte-level BPE tokenizer) for fast tests of mmlab.blip2 and mmlab.chat.

Built like the real one: `Blip2Processor(..., num_query_tokens=N)` adds `<image>` to the tokenizer and the config's
`image_token_index` points at it. The weights are random, so tests check mechanics (shapes, prompts, padding,
truncation), never what the model says.
"""

from __future__ import annotations

import functools
import json

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
    GPT2Tokenizer,
)

NUM_QUERY_TOKENS = 4
CONTEXT = 64  # the language model's max_position_embeddings: small, so truncation is easy to reach
IMAGE_SIZE = 32
PATCH_SIZE = 8

_CORPUS = [
    "Question: What colour is the circle? Answer: The circle is red.",
    "Question: How many objects are there? Answer: There are two objects.",
    "a photo of a small blue square on the left and a large yellow triangle on the right",
    "Her vocalization was remarkably melodic.",
]


@functools.cache
def tiny_blip2(context: int = CONTEXT) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _CORPUS * 20, vocab_size=320, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        show_progress=False,
    )
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    tokenizer = GPT2Tokenizer(
        vocab=bpe.get_vocab(), merges=merges, bos_token="</s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", add_bos_token=True,
    )
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=NUM_QUERY_TOKENS)
    config = Blip2Config(
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE,
        },
        qformer_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "cross_attention_frequency": 1,
        },
        text_config={
            "model_type": "opt", "vocab_size": len(tokenizer), "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": context, "word_embed_proj_dim": 32,
            "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1,
        },
        num_query_tokens=NUM_QUERY_TOKENS,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config).eval()
    with torch.no_grad():  # BLIP-2's initialization is nearly flat (attention uniform, same token everywhere)
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.normal_(std=0.3)
    return model, processor
