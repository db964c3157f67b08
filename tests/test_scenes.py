import random

import numpy as np
import pytest

from mmlab.data import scenes as sw


def test_same_seed_same_scene_and_pixels():
    a, b = sw.scene_from_seed(123), sw.scene_from_seed(123)
    assert a == b
    assert np.array_equal(np.asarray(sw.render_scene(a)), np.asarray(sw.render_scene(b)))
    assert sw.scene_from_seed(124) != a


def test_objects_are_left_to_right_in_distinct_thirds_and_do_not_overlap():
    for seed in range(300):
        scene = sw.scene_from_seed(seed)
        assert 1 <= scene.count <= 3
        xs = [o.x for o in scene.objects]
        assert xs == sorted(xs)
        assert len({o.position for o in scene.objects}) == scene.count
        assert sw._overlap_free(list(scene.objects))


def test_render_draws_each_object_in_its_colour():
    scene = sw.scene_from_seed(7)
    pixels = np.asarray(sw.render_scene(scene))
    assert pixels.shape == (224, 224, 3)
    for obj in scene.objects:
        assert tuple(pixels[obj.y, obj.x]) == sw.COLORS[obj.color]


def test_training_split_never_draws_held_out_combos_and_heldout_always_does():
    rng = random.Random(0)
    for _ in range(300):
        combos = {(o.color, o.shape) for o in sw.sample_scene(rng, split="train").objects}
        assert not combos & sw.HELD_OUT_COMBOS
        combos = {(o.color, o.shape) for o in sw.sample_scene(rng, split="heldout").objects}
        assert combos & sw.HELD_OUT_COMBOS


def test_questions_have_one_right_answer():
    rng = random.Random(1)
    kinds = set()
    for seed in range(200):
        scene = sw.scene_from_seed(seed)
        for qa in sw.questions(scene, rng):
            kinds.add(qa.kind)
            if qa.kind == "count":
                assert qa.answer == sw.NUMBERS[scene.count]
            if qa.kind == "color":
                shape = qa.question.split()[-1].rstrip("?")
                assert [o.color for o in scene.objects if o.shape == shape] == [qa.answer]
            if qa.kind == "yesno":
                color, shape = qa.question.rstrip("?").split()[-2:]
                present = any((o.color, o.shape) == (color, shape) for o in scene.objects)
                assert qa.answer == ("yes" if present else "no")
    assert kinds == {"color", "shape", "count", "position", "yesno"}


def test_captions_name_every_object_and_vary():
    scene = sw.scene_from_seed(3)
    assert sw.canonical_caption(scene).count(" a ") + 1 >= scene.count
    rng = random.Random(0)
    assert len({sw.caption(scene, rng) for _ in range(30)}) > 5


@pytest.mark.parametrize("count,joined", [(1, "a large red circle"), (3, "a small red circle, a small red circle and a small red circle")])
def test_canonical_caption_grammar(count, joined):
    size = "large" if count == 1 else "small"
    objects = tuple(sw.SceneObject("circle", "red", size, 40 + 70 * k, 100, 20) for k in range(count))
    assert sw.canonical_caption(sw.Scene(objects)) == joined


def test_a_colourless_caption_names_no_colour_and_draws_the_same_random_numbers():
    scene = sw.scene_from_seed(5, n_objects=3)
    plain, colourless = random.Random(1), random.Random(1)
    for _ in range(20):
        text = sw.caption(scene, colourless, with_color=False)
        sw.caption(scene, plain)
        assert not set(text.replace(",", "").split()) & set(sw.COLORS), text
    assert plain.random() == colourless.random()


def test_held_out_question_templates_are_never_training_templates():
    for kind, held_out in sw.HELD_OUT_TEMPLATES.items():
        assert not set(held_out) & set(sw.QUESTION_TEMPLATES[kind])
    rng = random.Random(0)
    for seed in range(50):
        for qa in sw.questions(sw.scene_from_seed(seed), rng, templates="heldout"):
            skeletons = [t.split("{")[0] for t in sw.HELD_OUT_TEMPLATES[qa.kind]]
            assert any(qa.question.startswith(s) for s in skeletons), qa


def test_questions_about_absent_objects_are_answered_as_absent():
    rng = random.Random(2)
    for seed in range(200):
        scene = sw.scene_from_seed(seed)
        qa = sw.absent_question(scene, rng)
        assert qa.kind == "absent" and qa.answer.startswith("there is no ")
        named = qa.answer.removeprefix("there is no ").split()
        if len(named) == 2 and named[1] in sw.SHAPES:  # "there is no red square"
            assert (named[0], named[1]) not in {(o.color, o.shape) for o in scene.objects}
        elif named[-1] == "object":  # "there is no red object"
            assert named[0] not in {o.color for o in scene.objects}
        else:  # "there is no square"
            assert named[0] not in {o.shape for o in scene.objects}


def test_a_follow_up_asks_about_the_previous_turns_object():
    rng = random.Random(3)
    asked = 0
    for seed in range(100):
        for qa in sw.questions(sw.scene_from_seed(seed), rng):
            later = sw.follow_up(qa, rng)
            if qa.subject is None:
                assert later is None
                continue
            asked += 1
            assert " it" in later.question.lower() or "its" in later.question.lower()
            o = qa.subject
            assert later.answer == {"color": o.color, "shape": o.shape, "position": o.position, "size": o.size}[later.kind]
            assert later.kind != qa.kind
    assert asked > 100


def test_questions_as_learners_type_them_keep_their_words():
    rng = random.Random(4)
    typed = {sw.as_typed("What is the color of the circle?", rng) for _ in range(200)}
    assert {"what is the color of the circle", "What's the colour of the circle?"} <= typed
    assert any(t.isupper() for t in typed)
    for t in typed:
        words = t.lower().replace("what's", "what is").replace("colour", "color").rstrip("?").split()
        assert words == ["what", "is", "the", "color", "of", "the", "circle"]


def test_a_hard_no_pairs_a_colour_and_a_shape_the_scene_has_on_different_objects():
    def hard_share(hard_no: float) -> float:
        rng, hard, total = random.Random(3), 0, 0
        for _ in range(300):
            scene = sw.sample_scene(rng, n_objects=3)
            for qa in sw.questions(scene, rng, "train", hard_no=hard_no):
                if qa.answer != "no":
                    continue
                words = [w.strip("?.").lower() for w in qa.question.split()]
                color, shape = next(w for w in words if w in sw.COLORS), next(w for w in words if w in sw.SHAPES)
                assert (color, shape) not in {(o.color, o.shape) for o in scene.objects}, qa.question
                hard += color in {o.color for o in scene.objects} and shape in {o.shape for o in scene.objects}
                total += 1
        return hard / total

    assert hard_share(1.0) > 0.8 and hard_share(0.0) < 0.5  # 1.0: all but scenes that have no such pair
