"""The training recipes: they learn, they are reproducible, and they save genuine Hugging Face folders."""

import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import Blip2ForConditionalGeneration, CLIPModel

from mmlab import evaluate
from mmlab.data.scenes import POSITIONS
from mmlab.models import embedded_path
from mmlab.train.blip2 import Blip2Recipe, prefix_words, train_blip2
from mmlab.train.clip import ClipRecipe, train_clip


def _falls(curve: list[float], k: int = 5, ratio: float = 0.9) -> bool:
    return np.mean(curve[-k:]) < ratio * np.mean(curve[:k])


def test_a_short_clip_run_lowers_both_losses():
    # At this tiny scale the contrastive loss sits on its ln(batch) plateau for a while, and how long depends on
    # the initialisation, which transformers changed within 5.x. Measured (Intel AMX CPU, 2026-11-28): with these
    # settings the mean of the last 10 steps is 2.13 under transformers 5.0 and 2.09 under 5.24, from 2.78.
    recipe = replace(ClipRecipe.short(), warmup_steps=30, contrastive_steps=150, contrastive_lr=2e-3, seed=0)
    _, _, curves = train_clip(recipe, progress=False)
    assert _falls(curves["warmup"])
    # contrastive loss starts at ln(batch) = ln 16 = 2.77 and stays there a while before it falls
    assert np.mean(curves["contrastive"][-10:]) < np.mean(curves["contrastive"][:10]) - 0.15


@pytest.fixture(scope="module")
def clip_vision():
    return CLIPModel.from_pretrained(embedded_path("clip"), dtype=torch.float32).vision_model


def test_a_short_blip2_run_lowers_the_language_model_loss(clip_vision):
    recipe = replace(Blip2Recipe.short(), lm_steps=30)
    _, _, curves = train_blip2(recipe, clip_vision, progress=False)
    assert _falls(curves["language"], ratio=0.8)


def test_same_seed_same_weights_other_seed_other_weights():
    a, _, _ = train_clip(ClipRecipe.short(), progress=False)
    b, _, _ = train_clip(ClipRecipe.short(), progress=False)
    c, _, _ = train_clip(replace(ClipRecipe.short(), seed=1), progress=False)
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(x, y), name
    assert not torch.equal(a.text_projection.weight, c.text_projection.weight)


def test_saved_checkpoints_are_fp16_safetensors_that_reload(tmp_path, clip_vision):
    model, _, _ = train_blip2(Blip2Recipe.short(), clip_vision, tmp_path / "blip2", progress=False)
    files = sorted(p.name for p in (tmp_path / "blip2").iterdir())
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)
    again = Blip2ForConditionalGeneration.from_pretrained(tmp_path / "blip2", dtype=torch.float32)
    assert again.query_tokens.shape == model.query_tokens.shape
    torch.testing.assert_close(again.query_tokens, model.query_tokens.half().float())


def test_prefix_spells_the_scene_third_by_third_in_13_words():
    for scene in evaluate.held_out_scenes(20, n_objects=2):
        words = prefix_words(scene)
        assert len(words) == 13 and words[0] == "two" and words.count("none") == 4
        for obj in scene.objects:
            k = 1 + 4 * POSITIONS.index(obj.position)  # the slot of the third it stands in
            assert words[k:k + 4] == [obj.size, obj.color, obj.shape, obj.position]


def test_strengthened_positions_tell_patch_tokens_apart():
    import random

    from mmlab.train.blip2 import build_blip2, strengthen_positions
    from mmlab.train.common import scene_batch

    blip, _ = build_blip2(Blip2Recipe())
    embeddings = blip.vision_model.embeddings
    _, pixels = scene_batch(random.Random(0), 4)
    before = embeddings.position_embedding.std().item()
    strengthen_positions(blip.vision_model, pixels, scale=2.0)
    spread = embeddings.patch_embedding(pixels).std().item()
    assert embeddings.position_embedding.std().item() == pytest.approx(2.0 * spread, rel=0.1) and spread > 10 * before


def test_packaged_checkpoints_fit_the_size_budget():
    total = sum(f.stat().st_size for name in ("clip", "blip2") for f in embedded_path(name).iterdir())
    assert total <= 25 * 10**6, f"{total / 1e6:.1f} MB"


def _metrics(folder) -> dict[str, float]:
    from transformers import AutoProcessor

    clip = CLIPModel.from_pretrained(folder / "clip", dtype=torch.float32).eval()
    clip_processor = AutoProcessor.from_pretrained(folder / "clip")
    blip = Blip2ForConditionalGeneration.from_pretrained(folder / "blip2", dtype=torch.float32).eval()
    blip_processor = AutoProcessor.from_pretrained(folder / "blip2")
    one = evaluate.held_out_scenes(100, n_objects=1)
    return {
        "zero-shot shape": evaluate.zero_shot_accuracy(clip, clip_processor, one, "shape"),
        "recall@1": evaluate.recall_at_1(clip, clip_processor, evaluate.held_out_scenes(100, unique=True)),
        "caption attributes": evaluate.caption_report(blip, blip_processor, evaluate.held_out_scenes(40)).attribute_accuracy,
        "vqa": evaluate.vqa_accuracy(blip, blip_processor, evaluate.held_out_scenes(40))["overall"],
    }


@pytest.mark.skipif(os.environ.get("MMLAB_RETRAIN") != "1", reason="full retrain (about 35 min on 2 cores): set MMLAB_RETRAIN=1")
def test_full_retrain_reproduces_the_packaged_checkpoints_metrics(tmp_path):
    """`python -m mmlab.train all` with the default seed and one thread gives the packaged checkpoints' figures."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "mmlab.train", "all", "--out", str(tmp_path), "--threads", "1"],
                   check=True)
    retrained, packaged = _metrics(tmp_path), _metrics(embedded_path("clip").parent)
    assert retrained == packaged


def test_blip2_vision_copied_from_clip_computes_the_same_but_for_the_pre_layernorm():
    import random

    from mmlab.train.blip2 import build_blip2, copy_clip_vision
    from mmlab.train.clip import build_clip
    from mmlab.train.common import scene_batch

    clip, _ = build_clip(ClipRecipe())
    blip, _ = build_blip2(Blip2Recipe())
    copy_clip_vision(blip.vision_model, clip.vision_model)
    clip.vision_model.pre_layrnorm = torch.nn.Identity()  # the one layer BLIP-2's encoder lacks
    _, pixels = scene_batch(random.Random(0), 2)
    with torch.no_grad():
        ours = blip.vision_model(pixel_values=pixels)
        theirs = clip.vision_model(pixel_values=pixels)
    torch.testing.assert_close(ours.last_hidden_state, clip.vision_model.post_layernorm(theirs.last_hidden_state),
                               atol=1e-5, rtol=1e-4)


def test_blip2_without_a_clip_checkpoint_says_what_to_do(tmp_path, capsys):
    from mmlab.train.__main__ import main

    with pytest.raises(SystemExit):
        main(["blip2", "--short", "--out", str(tmp_path)])
    assert "train it first" in capsys.readouterr().err


def test_greyscale_images_are_grey_and_have_no_colour_targets():
    import random

    from mmlab.train.common import CLIP_MEAN, CLIP_STD, SlotHeads, render_maybe_grey
    from mmlab.data.scenes import sample_scene

    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(40)]
    pixels, grey = render_maybe_grey(scenes, rng, share=0.5)
    assert 5 < grey.sum() < 35
    rgb = pixels * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    spread = (rgb.amax(dim=1) - rgb.amin(dim=1)).amax(dim=(1, 2))  # (B,) largest channel difference
    assert (spread[grey] < 1e-5).all() and (spread[~grey] > 0.1).all()
    # the colour heads get no loss from grey images: changing them changes nothing there
    heads = SlotHeads(8)
    pooled, patches = torch.randn(40, 8), torch.randn(40, 49, 8)

    def losses() -> tuple[float, float]:
        only = [s for s, g in zip(scenes, grey.tolist()) if g]
        others = [s for s, g in zip(scenes, grey.tolist()) if not g]
        on_grey, _ = heads.loss(pooled[grey], patches[grey], only, grey[grey])
        on_colour, _ = heads.loss(pooled[~grey], patches[~grey], others, grey[~grey])
        return on_grey.item(), on_colour.item()

    before = losses()
    with torch.no_grad():
        for name, head in [*heads.heads.items(), *heads.patch_heads.items()]:
            if name.startswith("color"):
                head.bias += torch.linspace(0, 20, head.bias.numel())
    after = losses()
    assert after[0] == pytest.approx(before[0]) and after[1] > before[1] + 1


def test_word_choice_loss_rewards_the_nearest_right_word():
    from mmlab.train.blip2 import word_choice_loss

    candidates = torch.eye(4) * 3  # (V, D): four well-separated words
    words = torch.tensor([[0, 2, 3]])  # (B, Q)
    right = candidates[words]  # (B, Q, D) each query on its own word
    wrong = candidates[(words + 1) % 4]
    halfway = (right + wrong) / 2
    losses = [word_choice_loss(soft, words, candidates).item() for soft in (right, halfway, wrong)]
    assert losses[0] < losses[1] < losses[2]


def test_blip2_queries_start_different():
    from mmlab.train.blip2 import build_blip2

    blip, _ = build_blip2(Blip2Recipe())
    queries = blip.query_tokens[0]  # (Q, D); transformers' own start is all zeros: every query alike
    assert (queries.norm(dim=-1) > 0).all()
    cosine = torch.nn.functional.normalize(queries, dim=-1) @ torch.nn.functional.normalize(queries, dim=-1).T
    assert cosine[~torch.eye(len(cosine), dtype=torch.bool)].abs().max() < 0.5
