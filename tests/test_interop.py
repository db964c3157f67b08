"""mmlab.interop: a HF CLIP converted to open_clip computes the same embeddings."""

import pytest
import torch
from _tiny_clip import tiny_clip
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from mmlab import interop
from mmlab.models import embedded_path

TEXTS = ["a puppy playing in the snow", "a cat", "a large red circle and a small blue square on the left"]


def check_same_embeddings(hf_model, processor):
    oc_model = interop.hf_clip_to_open_clip(hf_model)
    pixels = torch.randn(3, 3, *[hf_model.config.vision_config.image_size] * 2, generator=torch.Generator().manual_seed(0))
    hf_tokens = processor.tokenizer(TEXTS, padding="max_length", max_length=77, return_tensors="pt")
    oc_tokens = interop.open_clip_tokenizer(oc_model)(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(oc_model.encode_image(pixels),
                                   hf_model.get_image_features(pixel_values=pixels).pooler_output,
                                   atol=1e-4, rtol=1e-4)
        expected = hf_model.get_text_features(**hf_tokens).pooler_output
        torch.testing.assert_close(oc_model.encode_text(oc_tokens), expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(oc_model.encode_text(hf_tokens["input_ids"]), expected, atol=1e-4, rtol=1e-4)
    return oc_model, hf_tokens, oc_tokens


def test_tiny_random_clip_converts_exactly():
    model, processor = tiny_clip()
    _, hf_tokens, oc_tokens = check_same_embeddings(model, processor)
    # Same ids, different padding: HF pads with <|endoftext|>, open_clip with 0.
    real = hf_tokens["attention_mask"].bool()
    assert torch.equal(oc_tokens[real], hf_tokens["input_ids"][real])
    assert bool((oc_tokens[~real] == 0).all()) and bool((hf_tokens["input_ids"][~real] == 49407).all())


def test_embedded_checkpoint_converts_exactly_with_the_real_tokenizer():
    folder = embedded_path("clip")
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    oc_model, _, oc_tokens = check_same_embeddings(model, processor)
    assert oc_tokens[0, :8].tolist() == [49406, 320, 6829, 1629, 530, 518, 2583, 49407]
    image = Image.new("RGB", (300, 200), (200, 30, 30))
    pixels = interop.open_clip_transform(oc_model)(image).unsqueeze(0)
    hf_pixels = processor(images=image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == hf_pixels.shape == (1, 3, 224, 224)
    torch.testing.assert_close(pixels, hf_pixels, atol=2e-2, rtol=0)  # two resize implementations


def test_config_refuses_other_activations():
    model, _ = tiny_clip()
    model.config.vision_config.hidden_act = "relu"
    with pytest.raises(ValueError, match="QuickGELU or GELU"):
        interop.open_clip_config(model.config)
