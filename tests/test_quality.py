"""Floors for the packaged embedded default on held-out scenes (benchmarks/embedded_quality.py prints the figures).

Each floor sits a little below what the packaged checkpoints measure on these same samples, so a retrain
or a library upgrade that makes a lesson's answers worse fails here.
"""

import pytest
import torch
from transformers import AutoProcessor, Blip2ForConditionalGeneration, CLIPModel

from mmlab import evaluate
from mmlab.data.images import OFFLINE_SCENES
from mmlab.models import embedded_path

# Measured on the packaged checkpoints with these samples (BLIP-2 retrained 2026-12-04 on the AMD AVX2 kind): shape
# 97%, recall@1 94%, caption attributes 98% (whole captions 88%), VQA 95% (91% after an earlier turn), held-out
# phrasings typed as learners do 88%, absent objects answered as absent 93%, follow-ups about "it" 97%, questions
# in capitals 75%; the floors leave a few points of slack.
SHAPE_FLOOR, RECALL_FLOOR, CAPTION_FLOOR, EXACT_CAPTION_FLOOR, VQA_FLOOR = 0.93, 0.90, 0.93, 0.83, 0.90
PARAPHRASE_FLOOR, ABSENT_FLOOR, FOLLOW_UP_FLOOR, CAPITALS_FLOOR = 0.83, 0.88, 0.90, 0.65


pytestmark = pytest.mark.slow  # quality floors of the packaged models: seconds each

@pytest.fixture(scope="module")
def clip():
    path = embedded_path("clip")
    return CLIPModel.from_pretrained(path, dtype=torch.float32).eval(), AutoProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def blip2():
    path = embedded_path("blip2")
    model = Blip2ForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(path)


def test_clip_zero_shot_shape_and_colour(clip):
    scenes = evaluate.held_out_scenes(150, n_objects=1)
    assert evaluate.zero_shot_accuracy(*clip, scenes, "shape") >= SHAPE_FLOOR
    assert evaluate.zero_shot_accuracy(*clip, scenes, "color") >= 0.97


def test_clip_text_to_image_recall_among_100(clip):
    assert evaluate.recall_at_1(*clip, evaluate.held_out_scenes(100, unique=True)) >= RECALL_FLOOR


def test_clip_lesson_matrix_has_a_clear_diagonal(clip):
    assert evaluate.similarity_margin(*clip, list(OFFLINE_SCENES.values())) >= 0.14  # the chapter's CLIP: 0.14


def test_blip2_captions_name_the_objects(blip2):
    report = evaluate.caption_report(*blip2, evaluate.held_out_scenes(60))
    assert report.attribute_accuracy >= CAPTION_FLOOR, report.examples
    assert report.exact >= EXACT_CAPTION_FLOOR, report.exact_by_count


def test_blip2_answers_questions_with_and_without_history(blip2):
    scenes = evaluate.held_out_scenes(30)
    assert evaluate.vqa_accuracy(*blip2, scenes)["overall"] >= VQA_FLOOR
    assert evaluate.vqa_accuracy(*blip2, scenes, with_history=True)["overall"] >= VQA_FLOOR


def test_blip2_understands_phrasings_it_never_saw_and_says_when_an_object_is_absent(blip2):
    scenes = evaluate.held_out_scenes(30)
    assert evaluate.vqa_accuracy(*blip2, scenes, templates="heldout", typed=True)["overall"] >= PARAPHRASE_FLOOR
    assert evaluate.absent_accuracy(*blip2, scenes) >= ABSENT_FLOOR
    assert evaluate.follow_up_accuracy(*blip2, scenes) >= FOLLOW_UP_FLOOR
    # Capitals are rare in training and the weakest way to type (the benchmark: 69.7%, quoted in lesson 04).
    assert evaluate.capitals_accuracy(*blip2, scenes)["overall"] >= CAPITALS_FLOOR


def test_blip2_language_model_answers_every_question_type_from_the_true_prefix(blip2):
    report = evaluate.prefix_accuracy(*blip2, evaluate.vqa_questions(evaluate.held_out_scenes(30)))
    assert min(report.values()) >= 0.97, report  # measured: 100% of every type


def test_blip2_language_model_reads_the_earlier_turn_that_it_refers_to(blip2):
    # Three objects, so that "it" is ambiguous without the earlier turn (with one object, "it" needs no turn).
    asked = evaluate.follow_up_questions(evaluate.held_out_scenes(30, n_objects=3))
    with_turn = evaluate.prefix_accuracy(*blip2, asked)["overall"]
    without = evaluate.prefix_accuracy(*blip2, [(scene, qa, []) for scene, qa, _ in asked])["overall"]
    assert with_turn >= 0.75 and without <= 0.5, (with_turn, without)  # measured: 83% and 37%


def test_blip2_bridge_reads_every_fact_but_the_shape_of_pairs_no_training_image_shows(blip2):
    reading = evaluate.bridge_reading(*blip2, evaluate.held_out_scenes(60))
    assert min(reading[k] for k in ("count", "size", "color", "position")) >= 0.97, reading
    assert reading["shape, trained pairs"] >= 0.95, reading
    # The measured weakness (issue 11): yellow squares read as circles. Raise this floor when a recipe fixes it.
    assert reading["shape, held-out pairs"] >= 0.5, reading
