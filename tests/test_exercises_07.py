"""The self-checks of lesson 07 accept the worked solutions and reject the usual mistakes with a reason."""

import pytest
import torch

from mmlab.exercises import lesson07
from mmlab.train.blip2_recipe import Blip2Recipe, build_blip2


@pytest.fixture(scope="module")
def bridged():
    """A tiny BLIP-2 (three different widths) whose bridge alone took one optimizer step, and its weights before."""
    from _tiny_blip2 import tiny_blip2

    recipe = Blip2Recipe(image_size=32, patch_size=8, num_query_tokens=4, lm_context=64, vision_width=24,
                         vision_layers=1, vision_heads=2, qformer_width=16, qformer_layers=1, qformer_heads=2,
                         lm_width=32, lm_layers=1, lm_heads=2)
    model, _ = build_blip2(recipe, tiny_blip2()[1].tokenizer)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    bridge = [model.query_tokens, *model.qformer.parameters(), *model.language_projection.parameters()]
    model.requires_grad_(False)
    for p in bridge:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(bridge, lr=1e-2)
    queries = model.qformer(query_embeds=model.query_tokens, encoder_hidden_states=torch.randn(1, 17, 24))
    model.language_projection(queries.last_hidden_state).pow(2).mean().backward()
    optimizer.step()
    return model, before


def test_exercise_1_changed_parts(bridged, capsys):
    model, before = bridged
    assert lesson07.changed_parts(before, dict(model.named_parameters())) == {
        "query_tokens", "qformer", "language_projection"}
    assert lesson07.check_changed_parts(lesson07.changed_parts, before, model)
    capsys.readouterr()
    mistakes = {
        "torch.equal": lambda b, a: {n.split(".")[0] for n in a if b[n] != a[n]},
        "first component": lambda b, a: {n for n in a if not torch.equal(b[n], a[n])},
        "stayed the same": lambda b, a: {n.split(".")[0] for n in a if torch.equal(b[n], a[n])},
        "not the tensor objects": lambda b, a: {n.split(".")[0] for n in a if b[n] is not a[n]},
        "do not write them down": lambda b, a: ["qformer", "language_projection", "query_tokens"],  # hard-coded
        "are missing": lambda b, a: {n.split(".")[0] for n in list(a)[:1] if not torch.equal(b[n], a[n])},
    }
    for why, wrong in mistakes.items():
        assert not lesson07.check_changed_parts(wrong, before, model)
        out = capsys.readouterr().out
        assert why in out and "qformer" not in out and "query_tokens" not in out, why  # never the answer


def test_exercise_2_query_word(capsys):
    assert lesson07.check_query_word("blue") and lesson07.check_query_word(" Blue")
    for word, why in [("small", "query 9 (the size of the object in the right third)"),
                      ("square", "query 11"), ("none", "query 5"), ("two", "query 0 (the count)"),
                      ("green", "not among this scene's 13 prefix words")]:
        assert not lesson07.check_query_word(word)
        assert why in capsys.readouterr().out, word


def test_exercise_3_soft_tokens_shape(bridged, capsys):
    model, _ = bridged
    q, width = model.config.num_query_tokens, model.config.text_config.hidden_size  # 4, 32
    assert lesson07.check_soft_tokens_shape((8, q, width), model)
    assert lesson07.check_soft_tokens_shape(torch.Size([8, q, width]), model)
    for shape, why in [((8, q, 16), "Q-Former's output"), ((8, 16, width), "patches"), ((8, 17, width), "patches"),
                       ((q, width), "batch of 8"), ((8, width), "does not pool"), ((8, q, 24), "which width")]:
        assert not lesson07.check_soft_tokens_shape(shape, model)
        assert why in capsys.readouterr().out, shape


def test_exercise_3_with_the_real_blip2s_32_queries(bridged, capsys):
    model, _ = bridged
    q, width = model.config.num_query_tokens, model.config.text_config.hidden_size
    assert lesson07.check_soft_tokens_shape((8, 32, width), model, queries=32)
    assert not lesson07.check_soft_tokens_shape((8, q, width), model, queries=32)
    assert "the question changes it" in capsys.readouterr().out


def test_worked_solutions_print(capsys):
    for n in lesson07.EXERCISES:
        lesson07.solution(n)
    out = capsys.readouterr().out
    assert "def changed_parts" in out and 'word = "blue"' in out and "shape = (8" in out
