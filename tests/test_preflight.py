"""The hub pre-flight check, on stand-ins: small random models under the chapter's hub ids in a local HF cache.

The real Hub is never reached. The stand-ins keep the real CLIP tokenizer, so its check passes; their random weights
give random similarities and captions, which the pre-flight must report as failures with what to do, not crash on.
"""

from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from _tiny_blip2 import tiny_blip2
from _tiny_clip import tiny_clip
from PIL import Image
from test_models import _cache_as

import mmlab
from mmlab import doctor, models
from mmlab.data import image_io
from mmlab.data.images import CHAPTER_IMAGES_URL, LessonImage

BOOK_IMAGES = Path("/work/shared/book-images")  # the chapter's images, on the project's machines only
HUB = mmlab.Setup(mode="hub", reason="test", device="cpu", dtype=torch.float32, seed=0)
NAMES = ["hub mode", "CLIP loads", "CLIP tokenizer ids", "chapter images", "similarity matrix", "BLIP-2 loads",
         "BLIP-2 captions the car", "GPU memory left"]


LOAD_IMAGE = image_io.load_image


def chapter_image(source, **kwargs) -> Image.Image:
    """load_image, but a chapter image URL gives the book's image where it is here, else a stand-in colour."""
    if not isinstance(source, str):
        return LOAD_IMAGE(source, **kwargs)
    assert source.startswith(CHAPTER_IMAGES_URL), source
    name = source.removeprefix(CHAPTER_IMAGES_URL)
    if (BOOK_IMAGES / name).is_file():
        return Image.open(BOOK_IMAGES / name).convert("RGB")
    return Image.new("RGB", (64, 48), {"puppy.png": "white", "cat.png": "grey", "car.png": "orange"}[name])


@pytest.fixture
def standins(tmp_path, monkeypatch):
    """Hub mode on the CPU, with random stand-ins of the chapter's CLIP and BLIP-2 in a local Hugging Face cache."""
    cache = tmp_path / "hub"
    for hub_id, (model, processor) in ((models.CLIP_HUB_ID, tiny_clip()), (models.BLIP2_HUB_ID, tiny_blip2())):
        folder = tmp_path / hub_id.replace("/", "--")
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        _cache_as(cache, hub_id, folder)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "KNOWN_PARAMETERS", {})  # the stand-ins are small
    monkeypatch.setattr(models, "current_setup", lambda: HUB)
    monkeypatch.setattr(mmlab.mode, "current_setup", lambda: HUB)
    monkeypatch.setattr(image_io, "load_image", chapter_image)


def test_random_standins_fail_clearly_where_the_chapter_results_are_missing(standins, capsys):
    rows = doctor.hub_preflight()
    out = capsys.readouterr().out
    print(out)  # the table, for the record (pytest -s)
    assert [row.name for row in rows] == NAMES
    results = {row.name: row.ok for row in rows}
    assert results == {**dict.fromkeys(NAMES, True), "similarity matrix": False, "BLIP-2 captions the car": False,
                       "GPU memory left": False}
    found = {row.name: row.found for row in rows}
    assert found["CLIP tokenizer ids"] == str(doctor.CHAPTER_PUPPY_IDS)  # the real tokenizer gives the chapter's ids
    assert found["CLIP loads"].endswith(" s") and models.CLIP_HUB_ID in found["CLIP loads"]
    assert found["similarity matrix"].startswith("diagonal ")
    assert found["GPU memory left"].startswith("no CUDA GPU")
    assert all(row.fix for row in rows if not row.ok) and not any(row.fix for row in rows if row.ok)
    assert out.count("what to do: ") == 3 and "3 of 8 failed: similarity matrix, BLIP-2 captions the car" in out


def test_a_model_that_does_not_load_fails_its_checks_and_those_that_need_it(standins, monkeypatch, capsys):
    def unreachable():
        raise models.ModelUnavailableError("Could not load 'Salesforce/blip2-opt-2.7b': the Hub is not reachable")

    monkeypatch.setattr(models, "load_blip2", unreachable)
    rows = {row.name: row for row in doctor.hub_preflight()}
    assert not rows["BLIP-2 loads"].ok and "the Hub is not reachable" in rows["BLIP-2 loads"].found
    assert rows["BLIP-2 captions the car"].found == "not run: blip2 did not load"
    assert rows["BLIP-2 captions the car"].fix == "Fix the failed check above first."
    assert "8 GB free" in rows["BLIP-2 loads"].fix
    assert rows["CLIP tokenizer ids"].ok


def similarity_as(monkeypatch, matrix: torch.Tensor) -> None:
    """Make the embeddings give `matrix` (images x captions) as their cosine similarities."""
    monkeypatch.setattr("mmlab.embed.embed_images", lambda *args, **kwargs: torch.eye(3))
    monkeypatch.setattr("mmlab.embed.embed_texts", lambda *args, **kwargs: matrix.T)


# The chapter notebook's sentence-transformers cell prints this matrix: rows are the puppy, cat and car images,
# columns their captions (its printed figure shows the same numbers in the same places, with wrong row labels).
CHAPTER = torch.tensor([[0.3315, 0.1863, 0.1084], [0.1488, 0.3463, 0.0947], [0.0762, 0.1260, 0.3098]])


@pytest.mark.parametrize(("matrix", "ok", "says"), [
    (CHAPTER, True, "diagonal 0.33 / 0.35 / 0.31, largest off-diagonal 0.19"),
    (CHAPTER + 0.01, True, "diagonal 0.34 / 0.36 / 0.32"),  # float16 and resizing differences are tolerated
    (CHAPTER[[1, 0, 2]], False, "closer to another caption than to its own"),
    (CHAPTER * 2, False, "diagonal 0.66"),  # dominant, but not the chapter's numbers
])
def test_similarity_check_wants_the_chapter_matrix(monkeypatch, matrix, ok, says):
    similarity_as(monkeypatch, matrix)
    state = {"clip": (None, None), "images": [LessonImage(name, None, "") for name in ("puppy", "cat", "car")]}
    passed, found = doctor._similarity(state)
    assert passed is ok and says in found


def test_offline_mode_is_refused_before_anything_loads(isolated_mode, monkeypatch, capsys):
    mmlab.setup("offline")
    monkeypatch.setattr(models, "load_clip", lambda: pytest.fail("loaded a model offline"))
    rows = doctor.hub_preflight()
    assert [(row.name, row.ok) for row in rows] == [("hub mode", False)]
    assert "Run mmlab.setup('hub') first" in capsys.readouterr().out


def test_python_m_mmlab_doctor_hub_forces_hub_mode_and_exits_1_on_failure(monkeypatch):
    modes = []
    monkeypatch.setattr(mmlab, "setup", lambda mode=None: modes.append(mode))
    monkeypatch.setattr(doctor, "hub_preflight", lambda: [doctor.Preflight("hub mode", True, "hub"),
                                                          doctor.Preflight("GPU memory left", False, "no", "fix")])
    assert doctor.main(["--hub"]) == 1 and modes == ["hub"]
