"""BLIP-2 helpers for the lessons: captions, visual question answering, the projected queries and their attention.

All helpers take a `Blip2ForConditionalGeneration` and its `Blip2Processor` (from `mmlab.models.load_blip2`
or the hub) and follow the chapter's prompt format: `Question: ... Answer:`, earlier turns first.

Two facts of transformers 5.x shape this module:
- the processor inserts `num_query_tokens` `<image>` placeholders before the text; the model swaps them for the
  Q-Former's soft visual prompts. Without `num_query_tokens` (processor) and `image_token_index` (config) the image
  is silently ignored or `generate` crashes, so `check_ready` refuses such pairs with a clear message;
- `generate` returns the prompt (image placeholders included) followed by the new tokens, so the new text is
  everything after the input's length. Prompts of different lengths are padded on the left, so that every row's
  new tokens start right after its own prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Turn:
    """One question and the model's answer to it."""

    question: str
    answer: str


def format_prompt(question: str, history: Sequence[Turn | tuple[str, str]] = ()) -> str:
    """The chapter's chat-like prompt: `Question: q1 Answer: a1. Question: q2 Answer:`."""
    turns = [t if isinstance(t, Turn) else Turn(*t) for t in history]
    parts = [f"Question: {t.question.strip()} Answer: {_end_sentence(t.answer)}" for t in turns]
    parts.append(f"Question: {question.strip()} Answer:")
    return " ".join(parts)


def clean_answer(text: str) -> str:
    """The answer alone: the model often goes on with a new `Question:`, or a new line; cut there."""
    for marker in ("Question:", "Answer:", "\n"):
        text = text.split(marker, 1)[0]
    return text.strip()


def check_ready(model, processor) -> None:
    """Raise a clear error if the processor and model are not set up for transformers' `<image>` placeholders."""
    fix = (
        "Load both with mmlab.models.load_blip2(), or build the processor with "
        "Blip2Processor(image_processor, tokenizer, num_query_tokens=model.config.num_query_tokens) and set "
        "model.config.image_token_index = processor.tokenizer.convert_tokens_to_ids('<image>')."
    )
    wanted = model.config.num_query_tokens
    if getattr(processor, "num_query_tokens", None) != wanted:
        raise ValueError(
            f"The processor's num_query_tokens is {getattr(processor, 'num_query_tokens', None)!r} but the model "
            f"has {wanted} query tokens: the image would be ignored or misplaced. {fix}"
        )
    if model.config.image_token_index is None:
        raise ValueError(f"The model's config has no image_token_index, so generate() cannot place the image. {fix}")


def context_length(model) -> int:
    """How many tokens the language model can attend to (image placeholders, prompt and new tokens together)."""
    return model.config.text_config.max_position_embeddings


def prepare_inputs(model, processor, images: Sequence[Image.Image], prompts: Sequence[str]):
    """Processor outputs for a batch, padded on the left, on the model's device; pixels in the vision tower's dtype."""
    check_ready(model, processor)
    inputs = processor(images=list(images), text=list(prompts), return_tensors="pt", padding=True, padding_side="left")
    return inputs.to(model.device, dtype=model.vision_model.dtype)


@torch.inference_mode()
def generate_text(model, processor, images: Sequence[Image.Image], prompts: Sequence[str], *,
                  batch_size: int | None = None, progress: bool = False, desc: str = "generating",
                  **gen_kwargs) -> list[str]:
    """Generate a continuation of each (image, prompt) pair; returns the new text only, stripped.

    `batch_size` splits the pairs into batches (all at once by default), with a progress bar if `progress`.
    """
    if len(images) != len(prompts):
        raise ValueError(f"Got {len(images)} images but {len(prompts)} prompts: give one prompt per image.")
    size = batch_size or max(len(prompts), 1)
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    starts = range(0, len(prompts), size)
    texts: list[str] = []
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) < 2):
        texts += _generate_batch(model, processor, images[start:start + size], prompts[start:start + size], gen_kwargs)
    return texts


def _generate_batch(model, processor, images: Sequence[Image.Image], prompts: Sequence[str], gen_kwargs: dict):
    inputs = prepare_inputs(model, processor, images, prompts)
    prompt_length = inputs["input_ids"].shape[1]  # (B, T): image placeholders + padding + prompt tokens
    new_tokens = gen_kwargs.get("max_new_tokens", model.generation_config.max_new_tokens) or 0
    if prompt_length + new_tokens > context_length(model):
        raise ValueError(
            f"The prompt takes {prompt_length} tokens ({processor.num_query_tokens} of them for the image) and "
            f"max_new_tokens={new_tokens}, more than the language model's context of {context_length(model)} "
            "tokens. Shorten the prompt (or the history), or ask for fewer new tokens."
        )
    output = model.generate(**inputs, **gen_kwargs)  # (B, T + new): generate echoes the prompt
    texts = processor.batch_decode(output[:, prompt_length:], skip_special_tokens=True)
    return [text.strip() for text in texts]


def caption(
    model,
    processor,
    images: Image.Image | Sequence[Image.Image],
    *,
    prompt: str | Sequence[str] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    progress: bool = True,
    **gen_kwargs,
) -> list[str]:
    """One caption per image, generated in batches of `batch_size` (with a progress bar when there are several).

    `prompt` starts every caption (for example "a photo of"; the returned text continues it) or is a list with one
    prompt per image. Greedy by default, so the same image always gets the same caption; `do_sample=True`
    (with `temperature`, `top_p`, ... in `gen_kwargs`) gives varied ones.
    """
    images = [images] if isinstance(images, Image.Image) else list(images)
    prompts = [prompt or ""] * len(images) if prompt is None or isinstance(prompt, str) else list(prompt)
    if len(prompts) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(prompts)} prompts: give one prompt, or one per image.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return generate_text(model, processor, images, prompts, batch_size=batch_size, progress=progress,
                         desc="captioning", max_new_tokens=max_new_tokens, do_sample=do_sample, **gen_kwargs)


def answer(
    model,
    processor,
    image: Image.Image,
    question: str,
    *,
    history: Sequence[Turn | tuple[str, str]] = (),
    max_new_tokens: int = 30,
    do_sample: bool = False,
    **gen_kwargs,
) -> str:
    """Answer a question about an image, with earlier (question, answer) turns in the prompt if given."""
    if not question.strip():
        raise ValueError("The question is empty: ask something about the image.")
    prompt = format_prompt(question, history)
    (text,) = generate_text(
        model, processor, [image], [prompt], max_new_tokens=max_new_tokens, do_sample=do_sample, **gen_kwargs
    )
    return clean_answer(text)


def project_queries(model, pixels: torch.Tensor) -> torch.Tensor:
    """Image -> frozen ViT -> Q-Former queries -> projection: (B, Q, D_lm), as BLIP-2's forward does.

    The vision tower runs without gradients; the Q-Former and the projection keep theirs (the bridge trains them).
    """
    with torch.no_grad():
        image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state  # (B, N, D_v)
    queries = model.query_tokens.expand(pixels.shape[0], -1, -1)  # (B, Q, D_q)
    out = model.qformer(query_embeds=queries, encoder_hidden_states=image_embeds).last_hidden_state
    return model.language_projection(out)  # (B, Q, D_lm)


@torch.inference_mode()
def query_attention(model, processor, image: Image.Image) -> torch.Tensor:
    """Where the Q-Former's learned queries look: (num_queries, grid, grid), each map sums to 1.

    The cross-attention weights of every Q-Former layer that has cross-attention are averaged over layers and
    heads; the vision tower's class token is dropped and each query's weights over the patches renormalized.
    """
    pixels = processor.image_processor(image, return_tensors="pt")["pixel_values"]
    pixels = pixels.to(model.device, dtype=model.vision_model.dtype)  # (1, 3, H, W)
    image_embeds = model.vision_model(pixels).last_hidden_state  # (1, 1 + grid*grid, D): class token first
    previous = model.qformer.config._attn_implementation
    model.qformer.set_attn_implementation("eager")  # fused attention kernels return no weights
    try:
        out = model.qformer(
            query_embeds=model.query_tokens, encoder_hidden_states=image_embeds, output_attentions=True
        )
    finally:
        model.qformer.set_attn_implementation(previous)
    weights = torch.stack(out.cross_attentions).float()  # (L, 1, heads, Q, 1 + grid*grid)
    maps = weights.mean(dim=(0, 2))[0, :, 1:]  # (Q, grid*grid)
    maps = maps / maps.sum(dim=-1, keepdim=True)
    grid = round(maps.shape[-1] ** 0.5)
    return maps.reshape(-1, grid, grid).cpu()  # (Q, grid, grid)


def _end_sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
