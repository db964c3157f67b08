"""The self-checks of lesson 06 accept the worked solutions and reject the usual mistakes with their reason."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlab.data.scenes import sample_scene
from mmlab.exercises import SOLUTION_BEGIN, SOLUTION_END, lesson06


def run_worked(n: int) -> bool:
    """Run exercise `n`'s worked solution and its check as the notebook would; the check's verdict."""
    code = "\n".join(line for line in lesson06.EXERCISES[n].code.splitlines()
                     if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END))
    names = {"lesson06": lesson06, "torch": torch, "np": np, "shape_only_share": lesson06.shape_only_share,
             "sample_scene": sample_scene}
    exec(code, names)  # noqa: S102 - our own worked solution
    return bool(eval(lesson06.EXERCISES[n].check, names))


@pytest.mark.parametrize("n", sorted(lesson06.EXERCISES))
def test_the_worked_solutions_pass(n, capsys):
    assert run_worked(n)
    assert capsys.readouterr().out.startswith("✅")
    lesson06.solution(n)
    assert SOLUTION_BEGIN not in capsys.readouterr().out


def one_direction(image, text, scale):
    logits = scale * image @ text.T
    return F.cross_entropy(logits, torch.arange(len(image)))


def other_direction(image, text, scale):
    return one_direction(text, image, scale)


def summed(image, text, scale):
    return one_direction(image, text, scale) + other_direction(image, text, scale)


def no_temperature(image, text, scale):
    return lesson06.loss_by_hand(image, text, 1.0)


def positive(image, text, scale):
    return -lesson06.loss_by_hand(image, text, scale)


def per_pair(image, text, scale):
    return -(scale * image @ text.T).log_softmax(dim=1).diagonal()


def raises(image, text, scale):
    raise ValueError("not written yet")


@pytest.mark.parametrize(("fn", "reason"), [
    (one_direction, "images -> captions only"),
    (other_direction, "captions -> images only"),
    (summed, "divide by 2"),
    (no_temperature, "logit_scale before the softmax"),
    (positive, "minus their mean"),
    (per_pair, "return one number"),
    (raises, "raised ValueError: not written yet"),
    (lambda image, text, scale: torch.tensor(0.0), "not ClipLoss's value"),
])
def test_loss_mistakes_get_their_reason(fn, reason, capsys):
    assert not lesson06.check_loss(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌") and reason in out


def test_smallest_scale_is_where_the_right_caption_gets_half():
    scale = lesson06.smallest_scale()
    assert scale == pytest.approx(10 * math.log(31))
    p = torch.tensor([0.30] + [0.20] * 31).mul(scale).softmax(0)[0].item()
    assert p == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize(("answer", "reason"), [
    (14.3, "Larger"), (10.0, "Larger"), (6.9, "one wrong caption"), (100, "smallest such"), (0.0, "solve for the scale"),
    ("x", "a number"),
])
def test_temperature_for_mistakes_get_their_reason(answer, reason, capsys):
    assert not lesson06.check_temperature_for(answer)
    out = capsys.readouterr().out
    assert reason in out and "34" not in out  # a hint, never the answer
    assert lesson06.check_temperature_for(34.3)


@pytest.mark.parametrize(("p", "reason"), [
    (0.525, "at logit_scale 1"),
    (0.6, "ratio of the cosines"),
    (0.3, "cosine itself"),
    (0.9, "Multiply both cosines by 100"),
])
def test_temperature_mistakes_get_their_reason(p, reason, capsys):
    assert not lesson06.check_temperature(p)
    assert reason in capsys.readouterr().out


def test_share_at_64_is_measured_not_recalled(capsys):
    want = lesson06.share_at(64)
    assert lesson06.share_at(32) == pytest.approx(0.36, abs=0.005)  # the lesson's printed 36.0%
    assert want > 0.45  # twice the batch: a shape-only negative is much more common
    assert lesson06.check_share_at_64(want)
    capsys.readouterr()
    for wrong, says in [(0.36, "batches of 32"), (0.2, "Smaller than at 32"), (0.9, "Measure rather"), (55, "between 0 and 1"),
                        ("lots", "a number")]:
        assert not lesson06.check_share_at_64(wrong)
        out = capsys.readouterr().out
        assert says in out and f"{want:.0%}" not in out and f"{want:.2f}" not in out
