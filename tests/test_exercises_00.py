"""Lesson 00's self-checks: they accept the right answer, and their hints never give it away."""

import pytest

from mmlab.exercises import lesson00


def test_precedence_follows_the_mode_switch_itself():
    assert lesson00.mode_for({"MMLAB_MODE": "hub", "HF_HUB_OFFLINE": "1"}) == "hub"  # MMLAB_MODE is read first
    assert lesson00.mode_for({"HF_HUB_OFFLINE": "1"}) == "offline"
    assert lesson00.mode_for({}) == "offline"  # the probe, stubbed to fail


def test_precedence_check(capsys):
    assert lesson00.check_precedence("hub")
    assert lesson00.check_precedence(" 'Hub' ")
    capsys.readouterr()
    for wrong in ("offline", "cpu", None):
        assert not lesson00.check_precedence(wrong)
        assert "'hub'" not in capsys.readouterr().out


@pytest.mark.parametrize(("estimate", "says"), [
    (15.0, "float32"), (3.7, "8-bit"), (7.5e9, "units"), (11.0, "bytes per parameter"), ("lots", "a number"),
])
def test_gpu_memory_check_hints_without_the_answer(capsys, estimate, says):
    assert not lesson00.check_gpu_memory(estimate)
    out = capsys.readouterr().out
    assert says in out and "7.5" not in out and "float16" not in out


def test_gpu_memory_check_accepts_float16_weights(capsys):
    assert lesson00.check_gpu_memory(lesson00.BLIP2_PARAMETERS * 2 / 1e9)
    assert lesson00.check_gpu_memory(7.2)
    assert "7.5 GB" in capsys.readouterr().out
