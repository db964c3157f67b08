"""The embedded checkpoints load through the standard entry points; the hub path works on a local cache."""

import shutil
import time

import huggingface_hub.constants
import pytest
import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    Blip2ForConditionalGeneration,
    CLIPConfig,
    CLIPModel,
)

import mmlab
from mmlab import models
from mmlab.data.scenes import render_scene, scene_from_seed


@pytest.fixture(autouse=True)
def offline_setup():
    """Offline on the CPU, also on a machine with a GPU (the CUDA case is its own test)."""
    mmlab.setup("offline", device="cpu")
    yield


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


def test_embedded_clip_loads_with_hf_and_sentence_transformers_and_they_agree():
    from sentence_transformers import SentenceTransformer

    path = models.embedded_path("clip")
    model = CLIPModel.from_pretrained(path, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(path)
    image = render_scene(scene_from_seed(5))
    inputs = processor(text=["a large red circle"], images=image, return_tensors="pt", padding=True)
    assert inputs["pixel_values"].shape == (1, 3, 224, 224)
    with torch.no_grad():
        hf_image = model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
        hf_text = model.get_text_features(input_ids=inputs["input_ids"]).pooler_output
    assert hf_image.shape == hf_text.shape == (1, 512)
    st = SentenceTransformer(str(path), device="cpu")
    st_image = st.encode([image], convert_to_tensor=True)
    st_text = st.encode(["a large red circle"], convert_to_tensor=True)
    torch.testing.assert_close(st_image.float(), hf_image, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(st_text.float(), hf_text, atol=1e-4, rtol=1e-3)


def test_embedded_blip2_loads_with_auto_classes_and_generates_after_the_image_tokens():
    path = models.embedded_path("blip2")
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32).eval()
    assert isinstance(model, Blip2ForConditionalGeneration)
    processor = AutoProcessor.from_pretrained(path)
    assert processor.num_query_tokens == model.config.num_query_tokens
    image_id = model.config.image_token_index
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == image_id
    assert model.config.text_config.vocab_size >= len(processor.tokenizer)
    inputs = processor(images=render_scene(scene_from_seed(1)), text="Question: How many objects are there? Answer:",
                       return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    assert ids[: model.config.num_query_tokens] == [image_id] * model.config.num_query_tokens
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out[0, : len(ids)].tolist() == ids  # the prompt comes back first, then the new tokens
    assert out.shape[1] > len(ids)


@pytest.mark.parametrize("device", DEVICES)
def test_loaders_return_eval_models_on_the_setup_device_and_load_fast(device):
    mmlab.setup("offline", device=device)
    start = time.perf_counter()
    model, processor = mmlab.models.load_clip()
    blip, blip_processor = mmlab.models.load_blip2()
    assert time.perf_counter() - start < 10  # a generous bound; benchmarks/embedded_quality.py measures it
    dtype = torch.float16 if device == "cuda" else torch.float32
    for m in (model, blip):
        assert not m.training and m.device.type == device
    # BLIP-2 keeps its Q-Former in float32 by design (transformers' _keep_in_fp32_modules)
    assert model.dtype == dtype and blip.language_model.dtype == dtype and blip.vision_model.dtype == dtype
    assert type(processor).__name__ == "CLIPProcessor" and type(blip_processor).__name__ == "Blip2Processor"


def test_loaders_announce_the_offline_model(capsys):
    mmlab.models.load_blip2()
    out = capsys.readouterr().out
    assert "embedded default mmlab/checkpoints/blip2" in out and "cpu" in out


def test_unknown_hub_id_offline_says_what_to_do():
    with pytest.raises(models.ModelUnavailableError, match="embedded default"):
        models.load_clip("openai/clip-vit-large-patch14")


def test_missing_folder_is_named():
    with pytest.raises(models.ModelUnavailableError, match="No model folder at ./nowhere"):
        models.load_clip("./nowhere")


def test_broken_checkpoint_folder_names_the_folder(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(models.ModelUnavailableError, match=str(tmp_path)):
        models.load_clip(tmp_path)


def test_quantize_needs_a_gpu():
    with pytest.raises(models.ModelUnavailableError, match="CUDA GPU"):
        models.load_blip2(quantize="8bit")


def test_device_memory_reports_free_and_total_ram_on_the_cpu():
    memory = models.device_memory("cpu")
    if memory is None:
        pytest.skip("this system has no cheap way to ask for free memory (not Linux)")
    free, total = memory
    assert 0 < free <= total, memory


def test_a_model_too_big_for_memory_is_refused_with_advice(monkeypatch):
    monkeypatch.setattr(models, "device_memory", lambda device: (2 * 2**30, 24 * 2**30))
    with pytest.raises(models.ModelUnavailableError, match=r"needs about \d+\.\d GiB in float32 but the cpu has 2\.0 GiB free\. On a CUDA GPU, load it 8-bit.*"
                       r"lessons 03 to 05 run on the embedded BLIP-2"):
        models._check_memory(models.BLIP2_HUB_ID, mmlab.current_setup(), "BLIP-2")


# --- the hub code path, on stand-ins in a temporary Hugging Face cache -----------------------------


def _cache_as(cache, repo_id: str, folder) -> None:
    """Place a checkpoint folder in a Hugging Face cache as if downloaded from `repo_id`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """Stand-ins under the chapter's hub ids: ViT-B/32's real config with random weights for CLIP
    (the real tokenizer and preprocessing), the embedded BLIP-2 under the BLIP-2 id; the Hub forced offline."""
    from mmlab.train.clip_recipe import ClipRecipe, build_clip

    clip_folder = tmp_path / "clip-standin"
    _, processor = build_clip(ClipRecipe())
    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).half().save_pretrained(clip_folder)
    processor.save_pretrained(clip_folder)
    cache = tmp_path / "hub"
    _cache_as(cache, models.CLIP_HUB_ID, clip_folder)
    _cache_as(cache, models.BLIP2_HUB_ID, models.embedded_path("blip2"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_mode_loads_the_chapter_ids_from_the_cache(hub_cache, monkeypatch):
    monkeypatch.setattr(models, "KNOWN_PARAMETERS", {})  # the stand-ins are small
    monkeypatch.setattr(models, "current_setup", lambda: mmlab.Setup(
        mode="hub", reason="test", device="cpu", dtype=torch.float32, seed=0))
    model, processor = models.load_clip()
    assert model.config.vision_config.hidden_size == 768 and model.config.projection_dim == 512
    assert processor.tokenizer("a puppy playing in the snow").input_ids[1] == 320
    blip, blip_processor = models.load_blip2()
    assert blip_processor.num_query_tokens == blip.config.num_query_tokens


def test_hub_id_by_name_resolves_in_the_cache(hub_cache):
    model, _ = models.load_clip(models.CLIP_HUB_ID)
    assert model.config.vision_config.patch_size == 32
