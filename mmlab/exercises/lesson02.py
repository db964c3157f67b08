"""Lesson 02, CLIP: self-checks and worked solutions."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from mmlab.data.scenes import Scene, SceneObject, render_scene
from mmlab.exercises import Exercise, Verdict, solved, verdict

PUPPY = "a puppy playing in the snow"
ZERO_SHOT_LABELS = ["a photo of a red circle", "a photo of a red square", "a photo of a blue circle",
                    "a photo of a blue triangle"]
ZERO_SHOT_IMAGE = Scene((SceneObject("circle", "blue", "large", 112, 112, 36),), "white")
# Exercise 2 starts from the raw features of the lesson's three images and captions (given in the notebook).
FEATURES = """\
image_inputs = processor(images=images, return_tensors="pt").to(model.device)
text_inputs = processor(text=captions, padding=True, return_tensors="pt").to(model.device)
with torch.inference_mode():
    image_features = model.get_image_features(**image_inputs).pooler_output  # (3, D), raw
    text_features = model.get_text_features(**text_inputs).pooler_output  # (3, D), raw"""


def check_eot_position(answer: int, processor) -> Verdict:
    """Exercise 1: at which index of `input_ids` does CLIP read the text embedding of PUPPY?"""
    ids = processor.tokenizer(PUPPY)["input_ids"]
    eot = ids.index(processor.tokenizer.eos_token_id)
    wrong = {
        0: "Index 0 is <|startoftext|>: under the causal mask it has seen only itself.",
        len(ids): f"There are {len(ids)} tokens, but indices start at 0.",
        eot - 1: "That is the last word. One more: the end-of-text token comes after it.",
    }.get(answer, "Find the position of processor.tokenizer.eos_token_id in input_ids.")
    return verdict(answer == eot, f"Index {eot}, the <|endoftext|> token: the only position whose causal attention "
                   "has seen the whole text.", wrong)


def similarity_matrix(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """Cosine similarities: rows are images, columns are texts."""
    image = image_features / image_features.norm(dim=-1, keepdim=True)
    text = text_features / text_features.norm(dim=-1, keepdim=True)
    return image @ text.T


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float16 rounding (a model loaded in half precision on a GPU)."""
    return a.shape == b.shape and torch.allclose(a, b, atol=2e-3, rtol=1e-2)


def check_similarity_matrix(sim, image_features: torch.Tensor, text_features: torch.Tensor) -> Verdict:
    """Exercise 2: the image x text cosine-similarity matrix from raw (unnormalized) features."""
    want = similarity_matrix(image_features.float(), text_features.float())
    got = torch.as_tensor(sim).detach().float().cpu()
    want = want.cpu()
    if _close(got, want):
        return verdict(True, f"{tuple(want.shape)}: sim[i, j] compares image i with text j.", "")
    raw = (image_features.float() @ text_features.float().T).cpu()
    if _close(got, want.T):
        hint = "Transposed: put the images on the rows (image @ text.T), as the heatmap's labels say."
    elif _close(got, raw) or _close(got, raw.T):
        hint = "Those are raw dot products: divide each embedding by its norm first (values must lie in [-1, 1])."
    elif got.shape == want.shape and torch.allclose(got / got.abs().max(), want / want.abs().max(), atol=1e-3):
        hint = "Right pattern, wrong scale: is it multiplied by logit_scale? Cosine similarity stays in [-1, 1]."
    else:
        hint = f"Want shape {tuple(want.shape)} (images, texts): normalize both, then image @ text.T."
    return verdict(False, "", hint)


def zero_shot(model, processor, image, labels: list[str]) -> torch.Tensor:
    """Probabilities over `labels` for `image`: softmax of the scaled cosine similarities."""
    inputs = processor(text=labels, images=image, return_tensors="pt", padding=True).to(model.device)
    with torch.inference_mode():
        return model(**inputs).logits_per_image.softmax(dim=-1)[0].float().cpu()  # (len(labels),)


def check_zero_shot(fn, model, processor) -> Verdict:
    """Exercise 3: `fn(image, labels)` returns one probability per label (CLIP's zero-shot classifier)."""
    image = render_scene(ZERO_SHOT_IMAGE)
    want = zero_shot(model, processor, image, ZERO_SHOT_LABELS)
    try:
        got = torch.as_tensor(fn(image, ZERO_SHOT_LABELS)).detach().float().cpu().reshape(-1)
    except Exception as error:  # noqa: BLE001 - a learner's function can fail in any way; say how
        return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
    if got.shape != want.shape:
        return verdict(False, "", f"Got {got.numel()} numbers for {len(ZERO_SHOT_LABELS)} labels: one per label.")
    if torch.allclose(got, want, atol=2e-3):
        return verdict(True, f"Most likely: {ZERO_SHOT_LABELS[int(want.argmax())]!r} "
                       f"({want.max():.0%}). The labels are just texts; no training for this task.", "")
    if abs(float(got.sum()) - 1) > 1e-3:
        hint = "The numbers should sum to 1: apply softmax over the labels."
    elif torch.allclose(got, torch.full_like(got, 1 / len(got))) and not torch.allclose(want, got, atol=0.05):
        hint = "Every label got the same probability: embed the image and the labels, and compare them."
    else:
        with torch.inference_mode():
            image_emb = F.normalize(model.get_image_features(**processor(images=image, return_tensors="pt")
                                                             .to(model.device)).pooler_output.float(), dim=-1)
            text_emb = F.normalize(model.get_text_features(**processor.tokenizer(
                ZERO_SHOT_LABELS, padding=True, return_tensors="pt").to(model.device)).pooler_output.float(), dim=-1)
        unscaled = (image_emb @ text_emb.T).softmax(-1)[0].cpu()
        hint = ("Almost uniform: multiply the cosine similarities by model.logit_scale.exp() before the softmax."
                if torch.allclose(got, unscaled, atol=2e-3) else
                "Compare your numbers with model(**inputs).logits_per_image.softmax(dim=-1).")
    return verdict(False, "", hint)


EXERCISES = {
    1: Exercise(solved("""
        ids = processor.tokenizer(lesson02.PUPPY)["input_ids"]
        eot = ids.index(processor.tokenizer.eos_token_id)"""),
        "lesson02.check_eot_position(eot, processor)", "CLIP pools the text at its first <|endoftext|> token:"),
    2: Exercise(solved(inspect.getsource(similarity_matrix) + "\nmy_sim = similarity_matrix(image_features, text_features)",
                       given=FEATURES),
                "lesson02.check_similarity_matrix(my_sim, image_features, text_features)", points=2),
    3: Exercise(solved(inspect.getsource(zero_shot) + "\n\ndef classify(image, labels):\n"
                       "    return zero_shot(model, processor, image, labels)"),
                "lesson02.check_zero_shot(classify, model, processor)", points=2),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
