"""The images the lessons use: the chapter's photographs in hub mode, scene-world stand-ins offline."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PIL import Image

from mmlab.data.scenes import Scene, SceneObject, canonical_caption, render_scene

CHAPTER_IMAGES_URL = "https://raw.githubusercontent.com/HandsOnLLM/Hands-On-Large-Language-Models/main/chapter09/images/"
# The chapter's Rorschach card (its notebook's cell 34); reported to answer HTTP 403 (HandsOnLLM issue #98).
CHAPTER_INKBLOT_URL = "https://upload.wikimedia.org/wikipedia/commons/7/70/Rorschach_blot_01.jpg"
# What the chapter's notebook printed for BLIP-2 (HandsOnLLM/Hands-On-Large-Language-Models, chapter09, commit
# 6042517, cells 33, 35, 38, 39): references to set beside hub mode's outputs, never truths to mark them against.
CHAPTER_BLIP2_PRINTED = {
    "car": "an orange supercar driving on the road at sunset",
    "inkblot": "a black and white ink drawing of a bat",
    "Write down what you see in this picture.": "A sports car driving on the road at sunset",
    "What would it cost me to drive that car?": "$1,000,000",
}
# Where the chapter's images are fetched from: MMLAB_IMAGE_BASE_URL replaces the scheme and host of both URLs
# above (a mirror, or the loopback Hub of tools/loopback_hub.py), keeping their paths.
IMAGE_BASE_VARIABLE = "MMLAB_IMAGE_BASE_URL"
CHAPTER_CAPTIONS = {
    "puppy": "a puppy playing in the snow",
    "cat": "a pixelated image of a cute cat",
    "car": "A supercar on the road with the sunset in the background",
}

# Offline stand-ins: one, two and three objects, in colour/shape pairs the models saw in training.
OFFLINE_SCENES = {
    "red circle": Scene((SceneObject("circle", "red", "large", 96, 96, 29),), "white"),
    "blue square, yellow triangle": Scene(
        (SceneObject("square", "blue", "small", 48, 144, 14), SceneObject("triangle", "yellow", "large", 160, 64, 29)),
        "beige",
    ),
    "three shapes": Scene(
        (
            SceneObject("triangle", "green", "large", 32, 64, 28),
            SceneObject("circle", "purple", "small", 112, 176, 14),
            SceneObject("square", "red", "large", 192, 96, 28),
        ),
        "grey",
    ),
}


@dataclass(frozen=True)
class LessonImage:
    name: str
    image: Image.Image
    caption: str  # the caption the chapter pairs with it (offline: the scene's own description)


def lesson_images(mode: str | None = None) -> list[LessonImage]:
    """Three images with their captions: the chapter's puppy, cat and car in hub mode, three scenes offline."""
    if (mode or _mode()) == "hub":
        from mmlab.data.image_io import load_image

        return [
            LessonImage(name, load_image(chapter_image_url(f"{CHAPTER_IMAGES_URL}{name}.png")), text)
            for name, text in CHAPTER_CAPTIONS.items()
        ]
    return [LessonImage(name, render_scene(s), canonical_caption(s)) for name, s in OFFLINE_SCENES.items()]


def chapter_image_url(url: str) -> str:
    """`url` (one of the chapter's image URLs) on the server MMLAB_IMAGE_BASE_URL names, if it is set."""
    base = os.environ.get(IMAGE_BASE_VARIABLE, "").strip().rstrip("/")
    if not base:
        return url
    path = url.partition("://")[2].partition("/")[2]
    return f"{base}/{path}"


def example_photo() -> Image.Image:
    """A real photograph that ships with scikit-image (Chelsea the cat, 451x300): no download needed."""
    from skimage import data

    return Image.fromarray(data.chelsea())


def _mode() -> str:
    from mmlab.mode import current_setup

    return current_setup().mode
