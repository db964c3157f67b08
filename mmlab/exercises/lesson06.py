"""Lesson 06, training a CLIP: self-checks and worked solutions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from mmlab.exercises import Exercise, Verdict, solved, solved_function, verdict

NEGATIVES = 31  # exercise 2: the other captions of a batch of 32, each at cosine COSINES[1]
LOGIT_SCALE = 100.0  # exercise 3: the temperature OpenAI's CLIP learnt (open_clip clamps it there)
COSINES = (0.30, 0.20)  # exercises 2 and 3: one image against its own caption and another


def loss_by_hand(image_emb, text_emb, logit_scale):
    """CLIP's loss from log-probabilities: the right pair's log-probability, both directions, averaged."""
    logits = logit_scale * image_emb @ text_emb.T  # (B, B): rows are images, columns captions
    images_to_texts = logits.log_softmax(dim=1).diagonal()  # (B,): log p(own caption | image)
    texts_to_images = logits.log_softmax(dim=0).diagonal()  # (B,): log p(own image | caption)
    return -(images_to_texts.mean() + texts_to_images.mean()) / 2


def _embeddings() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed unit-length image and text embeddings (8 pairs) whose two directions give different losses."""
    g = torch.Generator().manual_seed(6)
    image = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    text = F.normalize(image + 0.9 * torch.randn(8, 16, generator=g), dim=-1)
    return image, text, torch.tensor(5.0)


def check_loss(fn) -> Verdict:
    """Exercise 1: the symmetric contrastive loss, written without `F.cross_entropy`, equal to open_clip's."""
    image, text, scale = _embeddings()
    want = ClipLoss()(image, text, scale).item()
    try:
        got = torch.as_tensor(fn(image.clone(), text.clone(), scale.clone()))
    except Exception as error:  # noqa: BLE001 - the learner's code may raise anything
        return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
    if got.numel() != 1:
        return verdict(False, "", f"It returned {tuple(got.shape)} values: return one number, the mean over the "
                                  "batch of both directions.")
    got = got.item()
    logits = scale * image @ text.T
    labels = torch.arange(len(image))
    rows, cols = F.cross_entropy(logits, labels).item(), F.cross_entropy(logits.T, labels).item()
    unscaled = (F.cross_entropy(image @ text.T, labels) + F.cross_entropy(text @ image.T, labels)).item() / 2
    hints = [
        (rows, ("That is images -> captions only (a softmax over each row); add captions -> images (over each "
               "column) and average the two.")),
        (cols, ("That is captions -> images only (a softmax over each column); add images -> captions (over each "
               "row) and average the two.")),
        (rows + cols, "You added the two directions: average them (divide by 2)."),
        (-(rows + cols) / 2, "The log-probabilities are negative: the loss is minus their mean."),
        (unscaled, ("Multiply the similarities by logit_scale before the softmax: without it every probability "
                   "stays close to uniform.")),
    ]
    if abs(got - want) < 1e-5:
        return verdict(True, f"{got:.4f}, as ClipLoss: the mean of -log p(own caption) over the images and "
                       "-log p(own image) over the captions.", "")
    hint = next((why for value, why in hints if abs(got - value) < 1e-5),
                f"Got {got:.4f}, not ClipLoss's value. Scale the similarities, take log_softmax along each "
                "dimension, keep the diagonal (the right pairs), and average minus their means.")
    return verdict(False, "", hint)


def smallest_scale(own: float = 0.30, other: float = 0.20, negatives: int = NEGATIVES, p: float = 0.5) -> float:
    """The logit_scale at which a caption with cosine `own` gets probability `p` against `negatives` at `other`."""
    # p = e^(s*own) / (e^(s*own) + n e^(s*other))  <=>  e^(s*(own - other)) = n p / (1 - p)
    return math.log(negatives * p / (1 - p)) / (own - other)


def check_temperature_for(scale: float) -> Verdict:
    """Exercise 2: the smallest logit_scale at which the own caption (0.30) gets 50% against 31 others at 0.20."""
    try:
        got = float(scale)
    except (TypeError, ValueError):
        return verdict(False, "", "Give the logit_scale as a number.")
    want = smallest_scale()
    right, other = COSINES

    def p_at(s: float) -> float:
        return torch.tensor([right] + [other] * NEGATIVES).mul(s).softmax(0)[0].item()

    if abs(got - want) <= 1.0:
        return verdict(True, f"About {want:.1f} (10 ln 31): below it the 31 wrong captions together outweigh the right "
                       f"one. CLIP starts at 14.3, where the right caption gets {p_at(1 / 0.07):.0%}, and learns its way "
                       f"up; at 100 it gets {p_at(100):.2%}.", "")
    if got <= 0:
        hint = "Write the softmax of the 32 scaled cosines and solve for the scale at which the right one is 0.5."
    elif abs(got - 10 * math.log(2)) < 1:
        hint = "That is the scale for one wrong caption. Here there are 31, each as likely as the others."
    elif p_at(got) < 0.5:
        hint = (f"At {got:g} the right caption gets only {p_at(got):.0%}: the 31 others together still win. Larger.")
    else:
        hint = (f"At {got:g} the right caption gets {p_at(got):.0%}: more than half, but is it the smallest such "
                "scale? Solve for the scale at which it is exactly 0.5.")
    return verdict(False, "", hint)


def check_temperature(p: float) -> Verdict:
    """Exercise 3: the probability of the right caption between two (cosines COSINES) at LOGIT_SCALE."""
    right, other = COSINES
    want = torch.tensor([right, other]).mul(LOGIT_SCALE).softmax(0)[0].item()
    wrong = [
        (torch.tensor([right, other]).softmax(0)[0].item(), ("That is at logit_scale 1: without the temperature a "
                                                             "cosine gap of 0.1 barely moves the softmax.")),
        (right / (right + other), ("The ratio of the cosines is not a probability CLIP uses: scale them, then take "
                                  "a softmax.")),
        (right, "0.30 is the cosine itself; CLIP turns cosines into probabilities with a scaled softmax."),
    ]
    hint = next((why for value, why in wrong if abs(p - value) < 1e-3),
                f"Multiply both cosines by {LOGIT_SCALE:g}, then take the softmax of the two.")
    return verdict(abs(p - want) < 1e-4, f"{want:.5f}: at scale 100 a gap of 0.1 in cosine is a gap of 10 in logits, "
                   "so the softmax is almost certain. The temperature sets how sharp the choice is; CLIP learns it.",
                   hint)


SHARE_BATCH, SHARE_BATCHES, SHARE_OF_32 = 64, 200, 0.36  # exercise 4: the lesson measured 36.0% at batch 32


def shape_only_share(scenes) -> float:
    """Share of scenes whose batch holds another with the same colours (in order) but other shapes."""
    colours = [tuple(o.color for o in s.objects) for s in scenes]
    shapes = [tuple(o.shape for o in s.objects) for s in scenes]
    return sum(any(colours[j] == colours[i] and shapes[j] != shapes[i] for j in range(len(scenes)) if j != i)
               for i in range(len(scenes))) / len(scenes)


def share_at(batch: int, batches: int = SHARE_BATCHES, seed: int = 2) -> float:
    """The mean share over `batches` random batches of `batch` scenes, drawn as the lesson draws them."""
    import random

    from mmlab.data.scenes import sample_scene

    rng = random.Random(seed)
    return sum(shape_only_share([sample_scene(rng) for _ in range(batch)]) for _ in range(batches)) / batches


def check_share_at_64(share: float) -> Verdict:
    """Exercise 4: the share of scenes with a negative only shape tells apart, in random batches of 64."""
    try:
        got = float(share)
    except (TypeError, ValueError):
        return verdict(False, "", "Pass the share as a number between 0 and 1.")
    want = share_at(SHARE_BATCH)
    if abs(got - want) <= 0.03:
        return verdict(True, f"About {want:.0%}: twice the scenes, so more chances that another has the same colours "
                       "and other shapes. A random batch asks for shape more often as it grows, but most of the "
                       "recipe's shape pressure still has to come from hard negatives built on purpose.", "")
    if got > 1:
        hint = "A share lies between 0 and 1 (0.5 is 50%)."
    elif abs(got - SHARE_OF_32) <= 0.03:
        hint = "That is the share for batches of 32, measured in the lesson. Measure it for batches of 64."
    elif got < SHARE_OF_32:
        hint = ("Smaller than at 32? With more scenes in the batch, is another scene with the same colours more or "
                "less likely? Measure it: shape_only_share on 200 random batches of 64.")
    else:
        hint = "Measure rather than guess: the mean of shape_only_share over 200 random batches of 64 scenes."
    return verdict(False, "", hint)


EXERCISES = {
    1: Exercise(solved_function(loss_by_hand), "lesson06.check_loss(loss_by_hand)",
                "Each row of the scaled similarities is a classification over captions, each column one over images; "
                "the right answers are on the diagonal:", points=2),
    2: Exercise(solved("""
        import math

        scale = math.log(31) / (0.30 - 0.20)  # e^(0.1 s) = 31: the right caption weighs as much as the 31 others"""),
        "lesson06.check_temperature_for(scale)",
        "Half the probability when e^(0.30 s) = 31 e^(0.20 s):"),
    3: Exercise(solved("p = torch.tensor(lesson06.COSINES).mul(lesson06.LOGIT_SCALE).softmax(0)[0].item()"),
                "lesson06.check_temperature(p)", "Scale the two cosines, then take their softmax:"),
    4: Exercise(solved("""
        import random

        rng = random.Random(2)
        share = float(np.mean([shape_only_share([sample_scene(rng) for _ in range(64)]) for _ in range(200)]))"""),
        "lesson06.check_share_at_64(share)",
        "The lesson's own measurement, with batches of 64 instead of 32:"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
