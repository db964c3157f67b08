"""mmlab.blip2 on a tiny random BLIP-2: batching, padding, prompt stripping, attention maps, clear errors."""

import numpy as np
import pytest
import torch
from _tiny_blip2 import CONTEXT, IMAGE_SIZE, NUM_QUERY_TOKENS, PATCH_SIZE, tiny_blip2
from PIL import Image
from transformers import Blip2ForConditionalGeneration, Blip2Processor

from mmlab import blip2


@pytest.fixture(scope="module")
def tiny():
    return tiny_blip2()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    sizes = [(40, 60), (32, 32), (50, 20), (64, 48), (30, 90)]  # wide, square and tall images
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


PROMPTS = ["a photo of", "Question: What colour is the circle? Answer:", "", "a", "Her vocalization was"]


@pytest.mark.slow
def test_batched_captions_equal_one_at_a_time(tiny, images):
    model, processor = tiny
    kwargs = {"prompt": PROMPTS, "min_new_tokens": 4, "max_new_tokens": 6}  # at least 4 tokens: nothing trivially empty
    batched = blip2.caption(model, processor, images, batch_size=5, **kwargs)
    in_twos = blip2.caption(model, processor, images, batch_size=2, progress=False, **kwargs)
    single = [blip2.caption(model, processor, im, prompt=p, min_new_tokens=4, max_new_tokens=6)[0]
              for im, p in zip(images, PROMPTS)]
    assert len(batched) == len(images)
    assert batched == single == in_twos
    assert all(batched)


def test_right_padding_would_change_the_captions(tiny, images):
    """The control for the test above: with right padding the short prompts' rows go wrong."""
    model, processor = tiny
    inputs = processor(images=images, text=PROMPTS, return_tensors="pt", padding=True, padding_side="right")
    out = model.generate(**inputs, min_new_tokens=4, max_new_tokens=6)
    right = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    single = [blip2.caption(model, processor, im, prompt=p, min_new_tokens=4, max_new_tokens=6)[0]
              for im, p in zip(images, PROMPTS)]
    assert [r.strip() for r in right] != single


def test_caption_without_prompt_returns_new_text_only(tiny, images):
    model, processor = tiny
    (text,) = blip2.caption(model, processor, images[0], min_new_tokens=3, max_new_tokens=3)
    inputs = processor(images=images[0], text="", return_tensors="pt")
    full = model.generate(**inputs, min_new_tokens=3, max_new_tokens=3)[0]
    assert full.shape[0] == NUM_QUERY_TOKENS + 1 + 3  # image placeholders, start token, new tokens
    assert text == processor.decode(full[-3:], skip_special_tokens=True).strip()


def test_answer_strips_the_prompt(tiny, images, monkeypatch):
    model, processor = tiny
    seen = {}
    original = model.generate

    def generate(**inputs):
        seen["prompt"] = processor.decode(inputs["input_ids"][0], skip_special_tokens=True)
        new = processor.tokenizer(" Red. Question: what else?", add_special_tokens=False, return_tensors="pt")
        return torch.cat([inputs["input_ids"], new["input_ids"]], dim=1)  # like generate: prompt, then new tokens

    monkeypatch.setattr(model, "generate", generate)
    reply = blip2.answer(model, processor, images[0], "What colour?", history=[("How many?", "Two")],
                         max_new_tokens=5)
    monkeypatch.setattr(model, "generate", original)
    assert seen["prompt"] == "Question: How many? Answer: Two. Question: What colour? Answer:"
    assert reply == "Red."


def test_format_prompt_and_clean_answer():
    assert blip2.format_prompt("q2?", [blip2.Turn("q1?", "a1")]) == "Question: q1? Answer: a1. Question: q2? Answer:"
    assert blip2.format_prompt(" Why? ") == "Question: Why? Answer:"
    assert blip2.clean_answer("  a red circle Question: and?") == "a red circle"
    assert blip2.clean_answer("blue\nAnswer: green") == "blue"


def test_prompt_longer_than_the_context_is_a_clear_error(tiny, images):
    model, processor = tiny
    with pytest.raises(ValueError, match="context of 64 tokens"):
        blip2.caption(model, processor, images[0], prompt="a photo of " * CONTEXT, max_new_tokens=5)


def test_processor_without_query_tokens_is_refused(tiny, images):
    model, processor = tiny
    bare = Blip2Processor(processor.image_processor, processor.tokenizer)  # num_query_tokens missing
    with pytest.raises(ValueError, match="num_query_tokens"):
        blip2.caption(model, bare, images[0])


def test_query_attention_maps(tiny, images):
    model, processor = tiny
    before = model.qformer.config._attn_implementation
    maps = blip2.query_attention(model, processor, images[0])
    grid = IMAGE_SIZE // PATCH_SIZE
    assert maps.shape == (NUM_QUERY_TOKENS, grid, grid)
    assert torch.allclose(maps.sum(dim=(1, 2)), torch.ones(NUM_QUERY_TOKENS))
    assert (maps >= 0).all()
    assert model.qformer.config._attn_implementation == before  # the model is left as it was
    other = blip2.query_attention(model, processor, images[2])
    assert not torch.allclose(maps, other)  # the maps depend on the image


def test_half_precision_checkpoint(tiny, images, tmp_path):
    """As on a GPU: fp16 weights with the Q-Former kept in fp32; pixels must follow the vision tower's dtype."""
    model, processor = tiny
    model.save_pretrained(tmp_path)
    half = Blip2ForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.float16).eval()
    assert half.vision_model.dtype == torch.float16 and half.dtype == torch.float32  # model.dtype would mislead
    captions = blip2.caption(half, processor, images[:2], prompt=PROMPTS[:2], min_new_tokens=2, max_new_tokens=2)
    assert len(captions) == 2
    assert blip2.query_attention(half, processor, images[0]).dtype == torch.float32
