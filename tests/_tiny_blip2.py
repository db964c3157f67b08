"""A tiny random BLIP-2 (OPT language model, byte-level BPE tokenizer) for fast tests of mmlab.blip2 and mmlab.chat.

Built by the recipe's own builder (`mmlab.train.blip2_recipe.build_blip2`) with a tiny recipe and a tokenizer trained on a
few sentences. The weights are random, so tests check mechanics (shapes, prompts, padding, truncation), never what
the model says.
"""

from __future__ import annotations

import functools

import torch
from transformers import Blip2ForConditionalGeneration, Blip2Processor

from mmlab.tokenization import train_opt_style_tokenizer
from mmlab.train.blip2_recipe import Blip2Recipe, build_blip2

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
    tokenizer = train_opt_style_tokenizer(_CORPUS * 20, vocab_size=320, english=False, min_frequency=1)
    recipe = Blip2Recipe(
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_query_tokens=NUM_QUERY_TOKENS, lm_context=context,
        vision_width=32, vision_layers=2, vision_heads=2, qformer_width=32, qformer_layers=2, qformer_heads=2,
        lm_width=32, lm_layers=2, lm_heads=2,
    )
    model, processor = build_blip2(recipe, tokenizer)
    model.eval()
    with torch.no_grad():  # BLIP-2's initialization is nearly flat (attention uniform, same token everywhere)
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(std=0.3)
    return model, processor
