"""The loopback Hub and its stand-in repos: huggingface_hub's own download paths, hub mode's loaders and image fetches,
the memory check from safetensors headers, and the real-size stand-ins' parameter counts against the chapter's."""

import importlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch

import mmlab
from mmlab import models
from mmlab.data.image_io import USER_AGENT, ImageLoadError, load_image
from mmlab.data.images import CHAPTER_INKBLOT_URL, chapter_image_url, lesson_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import stand_ins
from loopback_hub import CHAPTER_IMAGES, LoopbackHub

pytestmark = [pytest.mark.slow, pytest.mark.hub, pytest.mark.usefixtures("isolated_mode")]


@pytest.fixture(scope="module")
def tiny():
    return stand_ins.build("tiny")


@pytest.fixture(scope="module")
def server(tiny):
    """One server for the module: huggingface_hub keeps what it learnt of an endpoint for the process."""
    with LoopbackHub(tiny) as running:
        yield running


@pytest.fixture
def hub(server, tmp_path, monkeypatch):
    """The loopback Hub in hub mode, with an empty Hugging Face cache."""
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MMLAB_DEVICE", "cpu")
    constants = importlib.import_module("huggingface_hub.constants")  # read at import: set for this process
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    hf_api = importlib.import_module("huggingface_hub.hf_api")  # its module-level HfApi took the endpoint at import
    monkeypatch.setattr(hf_api.api, "endpoint", server.url)
    server.requests.clear()
    mmlab.setup()
    return server


def test_the_tiny_stand_ins_are_laid_out_as_the_real_repos(tiny):
    blip = tiny / models.BLIP2_HUB_ID
    assert sorted(p.name for p in blip.glob("model-*.safetensors")) == [
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = json.loads((blip / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    assert json.loads((blip / "processor_config.json").read_text())["num_query_tokens"] == 32
    assert json.loads((blip / "config.json").read_text())["image_token_index"] == 4096  # the embedded tokenizer's
    sbert = tiny / models.SBERT_CLIP_HUB_ID
    assert json.loads((sbert / "modules.json").read_text())[0]["path"] == "0_CLIPModel"
    assert {p.name for p in (sbert / "0_CLIPModel").iterdir()} == {
        "config.json", "pytorch_model.bin", "preprocessor_config.json", "vocab.json", "merges.txt",
        "tokenizer_config.json"}
    clip = tiny / models.CLIP_HUB_ID
    assert {"model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer.json"} <= {
        p.name for p in clip.iterdir()}


def test_hub_mode_downloads_and_loads_the_three_repos_with_progress_bars(hub, capsys):
    model, processor = models.load_clip()
    sentence = models.load_sentence_clip()
    blip, blip_processor = models.load_blip2()
    assert sentence.encode(["a puppy playing in the snow"]).shape == (1, model.config.projection_dim)
    assert blip_processor.num_query_tokens == blip.config.num_query_tokens == 32
    assert processor.tokenizer("a puppy playing in the snow").input_ids == [49406, 320, 6829, 1629, 530, 518, 2583, 49407]
    err = capsys.readouterr().err
    assert "Fetching 2 files" in err  # BLIP-2's two shards, downloaded with a bar: hub mode is not silent
    paths = [path for _, path, _ in hub.requests]
    assert any(p.startswith("/lfs/Salesforce/blip2-opt-2.7b/model-00001-of-00002") for p in paths)  # the redirect
    assert any(p.startswith("/api/models/Salesforce/blip2-opt-2.7b") for p in paths)


def test_snapshot_download_gets_every_file_and_missing_things_get_the_hubs_errors(hub, tiny):
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    folder = Path(snapshot_download(models.SBERT_CLIP_HUB_ID))
    expected = sorted(p.relative_to(tiny / models.SBERT_CLIP_HUB_ID) for p in (tiny / models.SBERT_CLIP_HUB_ID).rglob("*")
                      if p.is_file())
    assert sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file()) == expected
    assert (folder / "0_CLIPModel" / "pytorch_model.bin").read_bytes() == (
        tiny / models.SBERT_CLIP_HUB_ID / "0_CLIPModel" / "pytorch_model.bin").read_bytes()
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(models.CLIP_HUB_ID, "no_such_file.json")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(models.CLIP_HUB_ID, "config.json", revision="v9")


def test_the_chapters_images_come_from_the_base_url_and_the_inkblot_gets_the_clear_error(hub):
    images = lesson_images("hub")
    assert [i.image.size for i in images] == [size for size, _ in CHAPTER_IMAGES.values()]
    assert chapter_image_url(CHAPTER_INKBLOT_URL) == hub.url + "/wikipedia/commons/7/70/Rorschach_blot_01.jpg"
    with pytest.raises(ImageLoadError, match=r"answered HTTP 403 \(Forbidden\)\. The link may be dead"):
        load_image(chapter_image_url(CHAPTER_INKBLOT_URL))
    with pytest.raises(ImageLoadError, match="answered HTTP 404"):
        load_image(hub.url + "/HandsOnLLM/Hands-On-Large-Language-Models/main/chapter09/images/dog.png")
    assert {agent for _, path, agent in hub.requests if "chapter09" in path} == {USER_AGENT}


def test_without_the_setting_the_chapters_urls_are_used_as_they_are(monkeypatch):
    monkeypatch.delenv("MMLAB_IMAGE_BASE_URL", raising=False)
    assert chapter_image_url(CHAPTER_INKBLOT_URL) == CHAPTER_INKBLOT_URL


def test_the_memory_check_reads_the_hubs_safetensors_headers(hub, tiny):
    local = models.checkpoint_parameters(str(tiny / models.BLIP2_HUB_ID))
    assert local == sum(p.numel() for p in models.load_blip2()[0].parameters())
    assert models.checkpoint_parameters(models.BLIP2_HUB_ID) == local  # ranged reads of both shards' headers
    assert models.checkpoint_parameters(models.SBERT_CLIP_HUB_ID) == models.KNOWN_PARAMETERS[models.SBERT_CLIP_HUB_ID]


def test_blip2_that_fits_only_in_bfloat16_loads_in_bfloat16_on_the_cpu(hub, monkeypatch, capsys):
    parameters = models.checkpoint_parameters(models.BLIP2_HUB_ID)
    free = 3 * parameters  # float32 (4 bytes a parameter) does not fit, bfloat16 (2) does
    monkeypatch.setattr(models, "device_memory", lambda device: (free, 4 * free))
    model, processor = models.load_blip2()
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16  # (the Q-Former may stay float32)
    out = capsys.readouterr().out
    assert "does not fit" in out and "loading it in bfloat16" in out and "bfloat16 on cpu" in out
    from mmlab.blip2 import caption

    assert isinstance(caption(model, processor, [lesson_images("hub")[2].image], max_new_tokens=3)[0], str)
    monkeypatch.setattr(models, "device_memory", lambda device: (parameters, 4 * parameters))  # neither fits
    with pytest.raises(models.ModelUnavailableError, match="lessons 03 to 05 run on the embedded BLIP-2"):
        models.load_blip2()


def test_the_real_size_stand_ins_have_the_chapters_parameter_counts():
    from transformers import CLIPConfig, CLIPModel

    with torch.device("meta"):
        blip, _ = stand_ins._blip2(stand_ins.Blip2Widths.real())
        clip = CLIPModel(CLIPConfig())
    assert sum(p.numel() for p in clip.parameters()) == models.KNOWN_PARAMETERS[models.CLIP_HUB_ID]
    assert sum(p.numel() for p in blip.parameters()) == models.KNOWN_PARAMETERS[models.BLIP2_HUB_ID]


def test_the_server_answers_ranges(hub, tiny):
    import urllib.request

    file = tiny / models.CLIP_HUB_ID / "config.json"
    request = urllib.request.Request(f"{hub.url}/{models.CLIP_HUB_ID}/resolve/main/config.json",
                                     headers={"Range": "bytes=2-9"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206 and response.read() == file.read_bytes()[2:10]
    assert os.environ["HF_ENDPOINT"] == hub.url
