"""The images the lessons use: the chapter's photographs in hub mode, scene-world stand-ins offline."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from mmlab.data.scenes import Scene, SceneObject, canonical_caption, render_scene

CHAPTER_IMAGES_URL = "https://raw.githubusercontent.com/HandsOnLLM/Hands-On-Large-Language-Models/main/chapter09/images/"
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
        from mmlab.data.io import load_image

        return [
            LessonImage(name, load_image(f"{CHAPTER_IMAGES_URL}{name}.png"), text)
            for name, text in CHAPTER_CAPTIONS.items()
        ]
    return [LessonImage(name, render_scene(s), canonical_caption(s)) for name, s in OFFLINE_SCENES.items()]


def example_photo() -> Image.Image:
    """A real photograph that ships with scikit-image (Chelsea the cat, 451x300): no download needed."""
    from skimage import data

    return Image.fromarray(data.chelsea())


def _mode() -> str:
    from mmlab.mode import current_setup

    return current_setup().mode
