"""mmlab.prefix: the embedded BLIP-2's scene prefix, one word per learnt query."""

from mmlab.data.scenes import POSITIONS, Scene, SceneObject
from mmlab.evaluate import held_out_scenes
from mmlab.prefix import OBJECT_SLOTS, PREFIX_LENGTH, prefix_words, slot_index, slot_name


def test_the_prefix_has_the_13_slots_the_lessons_count():
    assert PREFIX_LENGTH == 13 == 1 + len(OBJECT_SLOTS) * len(POSITIONS)


def test_prefix_spells_the_scene_third_by_third():
    for scene in held_out_scenes(20, n_objects=2):
        words = prefix_words(scene)
        assert len(words) == PREFIX_LENGTH and words[0] == "two" and words.count("none") == len(OBJECT_SLOTS)
        for obj in scene.objects:
            for slot in OBJECT_SLOTS:
                assert words[slot_index(obj.position, slot)] == getattr(obj, slot)


def test_slot_names_say_what_each_query_carries():
    scene = Scene((SceneObject("circle", "red", "large", 48, 112, 28), SceneObject("square", "blue", "small", 176, 80, 13)))
    words = prefix_words(scene)
    assert slot_name(0) == "the count" and words[0] == "two"
    k = slot_index("right", "color")
    assert (k, slot_name(k), words[k]) == (10, "the colour of the object in the right third", "blue")
    assert [slot_name(slot_index("middle", s)) for s in OBJECT_SLOTS][-1] == "the position of the object in the middle third"
