"""The self-checks of lessons 01-02 accept the worked solutions and reject the usual mistakes with a reason."""

import pytest
import torch
from _tiny_clip import tiny_clip

from mmlab import vit
from mmlab.exercises import lesson01, lesson02


@pytest.fixture(scope="module")
def clip():
    return tiny_clip(image_size=64, patch_size=16)  # 4x4 = 16 patches


@pytest.mark.parametrize(("check", "right", "wrongs"), [
    (lesson01.check_vitg_tokens, 257, {256: "patches only", 50: "32-pixel", 197: "16-pixel", 3: "How many patches"}),
    (lesson01.check_vitg_patch_length, 588, {196: "one colour channel", 768: "16 x 16", 3072: "32 x 32", 5: "Count"}),
    (lesson01.check_b32_projection_parameters, 2_359_296,
     {2_360_064: "bias", 590_592: "ViT-B/16", 589_824: "16-pixel", 7: "n*m weights"}),
])
def test_lesson01_counts_for_other_patch_sizes(capsys, check, right, wrongs):
    assert check(right)
    capsys.readouterr()
    for wrong, says in wrongs.items():
        assert not check(wrong)
        out = capsys.readouterr().out
        assert says in out and str(right) not in out.replace(",", ""), (wrong, out)  # a hint, never the answer


def test_lesson01_conv_to_linear(capsys):
    assert lesson01.check_conv_to_linear(lesson01.conv_to_linear)
    assert lesson01.check_conv_to_linear(vit.conv_to_linear_weight)
    assert not lesson01.check_conv_to_linear(lambda w: w.reshape(w.shape[0], -1))  # channel-first order
    assert "wrong order" in capsys.readouterr().out
    assert not lesson01.check_conv_to_linear(lambda w: w[:, 0])
    assert "shape" in capsys.readouterr().out
    assert not lesson01.check_conv_to_linear(lambda w: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    for n in (1, 2, 3, 4):
        lesson01.solution(n)
    assert "def conv_to_linear" in capsys.readouterr().out


def test_lesson01_shuffle_is_measured(capsys):
    plain, shuffled = lesson01.class_token_outputs(positions=False)
    torch.testing.assert_close(plain, shuffled, atol=1e-5, rtol=1e-5)  # permutation-invariant for [CLS]
    plain, shuffled = lesson01.class_token_outputs(positions=True)
    assert not torch.allclose(plain, shuffled, atol=1e-3)
    assert lesson01.check_shuffle(("same", "changes")) and lesson01.check_shuffle([" Same", "CHANGES"])
    capsys.readouterr()
    for wrong, says in [(("changes", "changes"), "weighted sum"), (("same", "same"), "depends on its place"),
                        (("same",), "a pair"), (("yes", "no"), '"same" or "changes"'), (None, "a pair")]:
        assert not lesson01.check_shuffle(wrong)
        out = capsys.readouterr().out
        assert says in out and "('same', 'changes')" not in out


def test_lesson02_cat_eot_prediction(clip, capsys):
    _, processor = clip
    assert lesson02.CAT.split() == ["a", "pixelated", "image", "of", "a", "cute", "cat"]
    assert lesson02.check_cat_eot(9, processor)  # <|startoftext|>, 8 tokens for 7 words ('pixel', 'ated</w>')
    capsys.readouterr()
    for wrong, says in [(0, "startoftext"), (7, "not the <|startoftext|>"), (8, "Run the tokenizer"), (10, "start at 0"),
                        (3, "Count the tokens")]:
        assert not lesson02.check_cat_eot(wrong, processor)
        out = capsys.readouterr().out
        assert says in out and "9" not in out, (wrong, out)  # a hint, never the answer


def test_lesson02_mislabelled_cell(capsys):
    assert lesson02.check_mislabelled_cell((1, 2))
    capsys.readouterr()
    for wrong, says in [((2, 1), "the pair the printed labels claim"), ((1, 1), "diagonal"), ((0, 2), "cosine_similarity"),
                        ("cat", "(row, column)")]:
        assert not lesson02.check_mislabelled_cell(wrong)
        out = capsys.readouterr().out
        assert says in out and "(1, 2)" not in out, (wrong, out)


def test_lesson02_similarity_matrix(capsys):
    g = torch.Generator().manual_seed(0)
    image_features, text_features = torch.randn(3, 8, generator=g) * 5, torch.randn(4, 8, generator=g) * 5
    right = lesson02.similarity_matrix(image_features, text_features)
    assert lesson02.check_similarity_matrix(right, image_features, text_features)
    assert not lesson02.check_similarity_matrix(right.T, image_features, text_features)
    assert "Transposed" in capsys.readouterr().out
    assert not lesson02.check_similarity_matrix(image_features @ text_features.T, image_features, text_features)
    assert "norm" in capsys.readouterr().out
    assert not lesson02.check_similarity_matrix(100 * right, image_features, text_features)
    assert "logit_scale" in capsys.readouterr().out
    half_raw = (image_features.half() @ text_features.half().T).float()  # as on a GPU in float16
    assert not lesson02.check_similarity_matrix(half_raw, image_features, text_features)
    assert "raw dot products" in capsys.readouterr().out
    assert lesson02.check_similarity_matrix(right.half(), image_features, text_features)


def test_lesson02_zero_shot(clip, capsys):
    model, processor = clip
    assert lesson02.check_zero_shot(lambda image, labels: lesson02.zero_shot(model, processor, image, labels),
                                    model, processor)
    assert not lesson02.check_zero_shot(lambda image, labels: torch.ones(len(labels)), model, processor)
    assert "sum to 1" in capsys.readouterr().out
    want = lesson02.zero_shot(model, processor, lesson02.render_scene(lesson02.ZERO_SHOT_IMAGE), lesson02.ZERO_SHOT_LABELS)
    uniform = torch.full_like(want, 1 / len(want))
    assert not torch.allclose(want, uniform, atol=0.05)  # else the next check could not tell
    assert not lesson02.check_zero_shot(lambda image, labels: torch.full((len(labels),), 1 / len(labels)),
                                        model, processor)
    assert "same probability" in capsys.readouterr().out

    def unscaled(image, labels):
        inputs = processor(text=labels, images=image, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model(**inputs)
        return (out.logits_per_image / model.logit_scale.exp()).softmax(-1)[0]

    if model.logit_scale.exp() > 2:  # the scale must make a difference for this hint
        assert not lesson02.check_zero_shot(unscaled, model, processor)
        assert "logit_scale" in capsys.readouterr().out
    for n in (1, 2, 3):
        lesson02.solution(n)
    assert "def zero_shot" in capsys.readouterr().out
