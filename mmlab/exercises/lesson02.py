"""Lesson 02, CLIP: self-checks and worked solutions."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from mmlab.data.scenes import Scene, SceneObject, render_scene
from mmlab.exercises import Exercise, Verdict, solved, verdict

PUPPY = "a puppy playing in the snow"
CAT = "a pixelated image of a cute cat"  # the chapter's cat caption: one of its words is two tokens
# Exercise 4: the printed figure's label (row "cat caption", column "car image") and the cell of sim it shows.
IMAGES = CAPTIONS = ("puppy", "cat", "car")
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


def check_cat_eot(prediction: int, processor) -> Verdict:
    """Exercise 1: predict, before tokenizing, the index at which CLIP reads the text embedding of CAT."""
    ids = processor.tokenizer(CAT)["input_ids"]
    eot = ids.index(processor.tokenizer.eos_token_id)
    words = len(CAT.split())
    wrong = {
        0: "Index 0 is <|startoftext|>: under the causal mask it has seen only itself.",
        words: "That counts the words but not the <|startoftext|> token in front of them.",
        words + 1: ("One token per word, after <|startoftext|>: a good rule, but it does not hold for every word here. "
                    "Run the tokenizer and look at the tokens."),
        len(ids): "Indices start at 0: that would be one past the last token.",
    }.get(prediction, "Count the tokens before <|endoftext|>, <|startoftext|> included; then run the tokenizer.")
    return verdict(prediction == eot, f"Index {eot}: 'pixelated' is two tokens ('pixel', 'ated</w>'), so a "
                   "one-token-per-word count is one short. The embedding is read at <|endoftext|>, wherever it lands.",
                   wrong)


def check_mislabelled_cell(cell, *_) -> Verdict:
    """Exercise 4: which cell of the true sim (rows = images) sits under the printed label (cat caption, car image)?"""
    try:
        row, column = (int(v) for v in cell)
    except (TypeError, ValueError):
        return verdict(False, "", "Answer with a (row, column) pair of integers, such as (0, 0).")
    labelled = (IMAGES.index("car"), CAPTIONS.index("cat"))  # what the printed label claims: car image, cat caption
    shown = (IMAGES.index("cat"), CAPTIONS.index("car"))  # what is drawn there: plotted row = image, column = caption
    if (row, column) == shown:
        return verdict(True, "(1, 2): the cat image against the car caption. The chapter plots sim_matrix[y, x] at row y, "
                       "column x, and sim's rows are images; the label 'cat caption' on row 1 is wrong, the number "
                       "is right.", "")
    if (row, column) == labelled:
        hint = ("That is the pair the printed labels claim. Which object do the rows of the *plotted* matrix "
                "stand for, whatever their labels say?")
    elif row == column:
        hint = "A diagonal cell compares an image with its own caption; the label names two different things."
    else:
        hint = "Start from the code, not the labels: sim_matrix = cosine_similarity(image_embeddings, text_embeddings)."
    return verdict(False, "", hint)


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
        hint = ("Those are raw dot products, not cosines: a cosine lies in [-1, 1]. What must each vector's norm be "
                "for a dot product to be a cosine?")
    elif got.shape == want.shape and torch.allclose(got / got.abs().max(), want / want.abs().max(), atol=1e-3):
        hint = "Right pattern, wrong scale: is it multiplied by logit_scale? Cosine similarity stays in [-1, 1]."
    else:
        hint = f"Want shape {tuple(want.shape)} (images, texts), every value a cosine in [-1, 1]."
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
        ids = processor.tokenizer(lesson02.CAT)["input_ids"]
        my_prediction = ids.index(processor.tokenizer.eos_token_id)"""),
        "lesson02.check_cat_eot(my_prediction, processor)",
        "Count the tokens, then check the count against the tokenizer (it splits 'pixelated'):"),
    2: Exercise(solved(inspect.getsource(similarity_matrix) + "\nmy_sim = similarity_matrix(image_features, text_features)",
                       given=FEATURES),
                "lesson02.check_similarity_matrix(my_sim, image_features, text_features)", points=2),
    3: Exercise(solved(inspect.getsource(zero_shot) + "\n\ndef classify(image, labels):\n"
                       "    return zero_shot(model, processor, image, labels)"),
                "lesson02.check_zero_shot(classify, model, processor)", points=2),
    4: Exercise(solved("my_cell = (1, 2)  # plotted row y = image y (cat), column x = caption x (car)"),
                "lesson02.check_mislabelled_cell(my_cell)",
                "The chapter draws sim_matrix[y, x] at row y and column x; sim's rows are images, whatever the labels:"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
