"""mmlab.vit: patching, the linear patch projection and the encoder, checked against transformers."""

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers import ViTConfig as HFViTConfig
from transformers.models.clip.modeling_clip import CLIPEncoderLayer, CLIPVisionEmbeddings
from transformers.models.vit.modeling_vit import ViTEmbeddings

from mmlab import vit

SMALL_CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "image_size": 32, "patch_size": 8, "attn_implementation": "eager"}


@pytest.mark.parametrize("seed", range(6))
def test_unpatchify_inverts_patchify(seed):
    g = torch.Generator().manual_seed(seed)
    p = int(torch.randint(1, 9, (1,), generator=g))
    c = int(torch.randint(1, 5, (1,), generator=g))
    gh, gw = (int(v) for v in torch.randint(1, 6, (2,), generator=g))
    images = torch.randn(2, c, gh * p, gw * p, generator=g)
    patches = vit.patchify(images, p)
    assert patches.shape == (2, gh * gw, p * p * c)
    assert torch.equal(vit.unpatchify(patches, p, (gh * p, gw * p)), images)


def test_patches_are_read_row_by_row_and_flattened_row_column_channel():
    images = torch.randn(1, 3, 8, 12)  # a 2x3 grid of 4x4 patches
    patches = vit.patchify(images, 4)
    block = images[0, :, 4:8, 8:12]  # second row, third column -> patch 5
    assert torch.equal(patches[0, 5], block.permute(1, 2, 0).reshape(-1))


def test_patchify_rejects_sizes_that_do_not_tile():
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        vit.patchify(torch.zeros(1, 3, 30, 32), 8)


def test_linear_projection_equals_clip_strided_conv():
    torch.manual_seed(0)
    hf = CLIPVisionEmbeddings(CLIPVisionConfig(**SMALL_CLIP)).eval()
    mine = vit.PatchEmbedding(8, 3, 32, bias=False)
    vit.load_conv_patch_embedding(mine, hf.patch_embedding)
    pixels = torch.randn(3, 3, 32, 32)
    conv_tokens = hf.patch_embedding(pixels).flatten(2).transpose(1, 2)  # (B, N, D)
    torch.testing.assert_close(mine(pixels), conv_tokens, atol=1e-5, rtol=1e-5)


def test_linear_projection_equals_vit_strided_conv_with_bias():
    torch.manual_seed(0)
    hf = ViTEmbeddings(HFViTConfig(hidden_size=24, image_size=28, patch_size=7, num_channels=3)).eval()
    conv = hf.patch_embeddings.projection
    torch.nn.init.normal_(conv.bias)  # make the bias matter
    mine = vit.load_conv_patch_embedding(vit.PatchEmbedding(7, 3, 24, bias=True), conv)
    pixels = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(mine(pixels), hf.patch_embeddings(pixels), atol=1e-5, rtol=1e-5)


def test_encoder_layer_matches_clip_encoder_layer():
    torch.manual_seed(0)
    config = CLIPVisionConfig(**SMALL_CLIP)
    hf = CLIPEncoderLayer(config).eval()
    mine = vit.EncoderLayer(vit.ViTConfig(hidden_size=32, num_heads=4, intermediate_size=64)).eval()
    mine.load_state_dict(hf.state_dict())  # the same parameter names
    x = torch.randn(2, 17, 32)
    out, weights = mine(x)
    torch.testing.assert_close(out, hf(x, attention_mask=None), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 17))


def test_vision_transformer_from_clip_matches_clip_vision_model():
    torch.manual_seed(0)
    hf = CLIPVisionModel(CLIPVisionConfig(**SMALL_CLIP)).eval()
    mine = vit.VisionTransformer.from_clip(hf)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = hf(pixel_values=pixels, output_attentions=True)
        got = mine(pixels)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, atol=1e-5, rtol=1e-4)
    for a, b in zip(got.attentions, expected.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_attention_rollout_rows_sum_to_one_and_maps_have_grid_shape():
    torch.manual_seed(0)
    attentions = [torch.randn(2, 4, 17, 17).softmax(-1) for _ in range(3)]
    rollout = vit.attention_rollout(attentions)
    assert rollout.shape == (2, 17, 17)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 17))
    assert vit.rollout_map(attentions).shape == (2, 4, 4)
    cls = vit.cls_attention(attentions[-1])
    assert cls.shape == (2, 4, 4, 4)
    torch.testing.assert_close(cls.sum((-2, -1)), 1 - attentions[-1][:, :, 0, 0])


def test_rollout_of_pure_self_attention_is_identity():
    attentions = [torch.eye(5).expand(1, 2, 5, 5)] * 3
    torch.testing.assert_close(vit.attention_rollout(attentions), torch.eye(5).unsqueeze(0))


@pytest.mark.slow
def test_short_training_run_lowers_the_loss():
    from mmlab.tiny_vit import TinyTrainConfig, train_tiny_vit

    result = train_tiny_vit(TinyTrainConfig(task="color", steps=60, batch_size=32, num_train=256,
                                            num_eval=64, image_size=48, patch_size=6))
    assert len(result.losses) == 60
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.5 * first, result.losses
    assert result.eval_accuracy > 0.4  # chance is 0.2
    assert result.labels == ("red", "green", "blue", "yellow", "purple")
    assert result.eval_images.shape == (64, 3, 48, 48)
