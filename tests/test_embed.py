"""mmlab.embed: batched embeddings equal the one-at-a-time ones; search finds the nearest items."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _tiny_clip import tiny_clip
from PIL import Image

from mmlab import embed


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (48 + 8 * i, 80, 3), dtype=np.uint8)) for i in range(5)]


TEXTS = ["a puppy playing in the snow", "a cat", "a supercar on the road with the sunset in the background"]


def one_by_one_images(model, processor, images):
    with torch.no_grad():
        rows = [model.get_image_features(**processor(images=image, return_tensors="pt")).pooler_output
                for image in images]
    return F.normalize(torch.cat(rows), dim=-1)


def test_batched_images_equal_one_at_a_time_in_float32(clip, images):
    model, processor = clip
    expected = one_by_one_images(model, processor, images)
    for batch_size in (1, 2, 32):
        got = embed.embed_images(model, processor, images, batch_size=batch_size, dtype=torch.float32,
                                 progress=False)
        assert got.dtype == torch.float32 and got.shape == (5, 24)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_default_dtype_stays_close_to_float32(clip, images):
    model, processor = clip
    expected = one_by_one_images(model, processor, images)
    got = embed.embed_images(model, processor, images, progress=False)
    assert F.cosine_similarity(got, expected).min() > 0.99
    assert next(model.parameters()).dtype == torch.float32  # the model itself is untouched


def test_images_from_paths_and_unnormalized_output(clip, images, tmp_path):
    model, processor = clip
    paths = []
    for i, image in enumerate(images[:2]):
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    raw = embed.embed_images(model, processor, paths, normalize=False, dtype=torch.float32, progress=False)
    with torch.no_grad():
        first = model.get_image_features(**processor(images=images[0], return_tensors="pt")).pooler_output
    torch.testing.assert_close(raw[0], first[0], atol=1e-5, rtol=1e-4)


def test_batched_texts_equal_one_at_a_time(clip):
    model, processor = clip
    with torch.no_grad():
        rows = [model.get_text_features(**processor.tokenizer([t], return_tensors="pt")).pooler_output for t in TEXTS]
    expected = F.normalize(torch.cat(rows), dim=-1)
    got = embed.embed_texts(model, processor, TEXTS, batch_size=2, dtype=torch.float32, progress=False)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)  # padding in a batch changes nothing


def test_plain_tensor_return_convention(clip, images):
    """Older transformers return the embedding itself from get_image_features."""
    model, processor = clip

    class TensorReturning(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def get_image_features(self, pixel_values):
            return self.inner.get_image_features(pixel_values=pixel_values).pooler_output

    got = embed.embed_images(TensorReturning(), processor, images, dtype=torch.float32, progress=False)
    torch.testing.assert_close(got, one_by_one_images(model, processor, images), atol=1e-5, rtol=1e-4)


def test_compute_dtype_choice(clip):
    model, _ = clip
    assert embed.compute_dtype(model, torch.float32) == torch.float32
    expected = torch.bfloat16 if embed.cpu_has_fast_bf16() else torch.float32
    assert embed.compute_dtype(model) == expected
    assert embed.compute_dtype(model, torch.bfloat16) == torch.bfloat16
    half = tiny_clip()[0].to(torch.bfloat16)
    assert embed.compute_dtype(half) == embed.compute_dtype(half, torch.float32) == torch.bfloat16


def test_bad_inputs(clip):
    model, processor = clip
    with pytest.raises(TypeError, match="list of strings"):
        embed.embed_texts(model, processor, "a cat")
    with pytest.raises(ValueError, match="no images"):
        embed.embed_images(model, processor, [])


def test_search_finds_nearest_items():
    gallery = F.normalize(torch.randn(10, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    query = gallery[[7, 2]] + 0.01
    result = embed.search(query, gallery, k=3)
    assert result.indices[:, 0].tolist() == [7, 2]
    assert result.scores.shape == (2, 3) and bool((result.scores[:, :-1] >= result.scores[:, 1:]).all())
    assert embed.search(gallery[4], gallery, k=1).indices.tolist() == [[4]]
    with pytest.raises(ValueError, match="k must be between 1 and the gallery size 10"):
        embed.search(query, gallery, k=11)
    with pytest.raises(ValueError, match="same model"):
        embed.search(torch.randn(3), gallery)


def test_half_precision_model_runs_in_its_own_dtype(clip, images):
    """As on a GPU, where load_clip loads float16: asking for float32 must not crash."""
    model, processor = clip
    half = tiny_clip()[0].to(torch.bfloat16)
    got = embed.embed_images(half, processor, images, dtype=torch.float32, progress=False)
    assert got.dtype == torch.float32
    assert F.cosine_similarity(got, one_by_one_images(model, processor, images)).min() > 0.98
