"""The scene world: coloured shapes on plain backgrounds, with captions and questions.

Every scene is deterministic given its seed. The embedded default models are trained
and evaluated on this world, so offline every lesson has images whose content is known.

Objects stand in distinct thirds of the image (left, middle, right), so "left of" and
"the second object" always have one answer, and captions list objects left to right.

Objects sit on the 32-pixel patch grid of ViT-B/32: a small object inside one patch, a large one centred
on a patch corner so that each of its four patches shows one quarter of it. A ViT has no notion of
"the same edge, shifted a little"; with objects at arbitrary offsets our tiny models, trained for minutes
on a CPU, learnt colour and never shape. On the grid, every patch sees a shape piece in a few
canonical poses, and shape is learnt in minutes (a lesson in what data a ViT needs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLORS = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 215),
    "yellow": (235, 195, 30),
    "purple": (135, 55, 175),
}
SIZES = {"small": (12, 15), "large": (26, 30)}  # radius range in pixels
PATCH = 32  # the ViT-B/32 patch grid (7 x 7) that objects are placed on
POSITIONS = ("left", "middle", "right")
BACKGROUNDS = {"white": (246, 246, 246), "grey": (212, 212, 212), "beige": (238, 226, 204)}
NUMBERS = ("zero", "one", "two", "three")
IMAGE_SIZE = 224

# Attribute combinations never drawn in the training split: the "held-out combos" test.
HELD_OUT_COMBOS = frozenset({("purple", "triangle"), ("yellow", "square"), ("green", "circle")})

SHAPE_SYNONYMS = {"circle": ("circle", "disk"), "square": ("square", "box"), "triangle": ("triangle",)}
SIZE_SYNONYMS = {"small": ("small", "little"), "large": ("large", "big")}


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    x: int  # centre, pixels
    y: int
    radius: int

    @property
    def position(self) -> str:
        return POSITIONS[min(self.x * 3 // IMAGE_SIZE, 2)]

    def phrase(self, with_size: bool = True) -> str:
        words = [self.size] if with_size else []
        return " ".join([*words, self.color, self.shape])


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]  # sorted left to right
    background: str = "white"
    seed: int = field(default=0, compare=False)

    @property
    def count(self) -> int:
        return len(self.objects)


def sample_scene(
    rng: random.Random,
    *,
    n_objects: int | None = None,
    split: str = "train",
    max_objects: int = 3,
) -> Scene:
    """Draw a random scene. `split="train"` never uses HELD_OUT_COMBOS; "heldout" uses at least one."""
    n = n_objects or rng.randint(1, max_objects)
    thirds = sorted(rng.sample(range(3), n))
    while True:
        objects = []
        for third in thirds:
            shape, color, size = rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(list(SIZES))
            radius = rng.randint(*SIZES[size])
            # small: a patch centre (16 + 32 i); large: a patch corner (32 i); each in its third of the image
            anchors = [a for a in range(16 if size == "small" else 32, IMAGE_SIZE - 8, PATCH)
                       if min(a * 3 // IMAGE_SIZE, 2) == third]
            x = rng.choice(anchors) + rng.randint(-2, 2)
            y = rng.choice(range(16 if size == "small" else 32, IMAGE_SIZE - 8, PATCH)) + rng.randint(-2, 2)
            y = min(max(y, radius + 1), IMAGE_SIZE - radius - 1)
            objects.append(SceneObject(shape, color, size, x, y, radius))
        combos = {(o.color, o.shape) for o in objects}
        if split == "train" and combos & HELD_OUT_COMBOS:
            continue
        if split == "heldout" and not combos & HELD_OUT_COMBOS:
            continue
        if _overlap_free(objects):
            return Scene(tuple(objects), rng.choice(list(BACKGROUNDS)))


def _overlap_free(objects: list[SceneObject]) -> bool:
    for i, a in enumerate(objects):
        for b in objects[i + 1 :]:
            if (a.x - b.x) ** 2 + (a.y - b.y) ** 2 < (a.radius + b.radius + 4) ** 2:
                return False
    return True


def scene_from_seed(seed: int, **kwargs) -> Scene:
    """The scene with this seed: the same seed gives the same scene on every machine."""
    scene = sample_scene(random.Random(seed), **kwargs)
    return Scene(scene.objects, scene.background, seed)


def render_scene(scene: Scene) -> Image.Image:
    """Draw a scene as a 224x224 RGB image."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x, y, r = obj.x, obj.y, obj.radius
        fill = COLORS[obj.color]
        if obj.shape == "circle":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        elif obj.shape == "square":
            s = int(r * 0.88)  # same visual area class as the circle
            draw.rectangle([x - s, y - s, x + s, y + s], fill=fill)
        else:
            draw.polygon([(x, y - r), (x - r, y + int(0.8 * r)), (x + r, y + int(0.8 * r))], fill=fill)
    return image


# --- language -----------------------------------------------------------------------------------


def canonical_caption(scene: Scene) -> str:
    """The one caption form the captioning model is trained to produce, objects left to right."""
    phrases = [f"a {o.phrase()}" for o in scene.objects]
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def caption(scene: Scene, rng: random.Random, *, with_color: bool = True) -> str:
    """A varied natural-language caption (synonyms, optional size and position, several templates).

    `with_color=False` names no colour (for a greyscale image); it draws the same random numbers.
    """
    parts = []
    for o in scene.objects:
        words = []
        if rng.random() < 0.7:
            words.append(rng.choice(SIZE_SYNONYMS[o.size]))
        # Now and then leave out the colour or the shape, so "a photo of a circle" is a familiar text.
        leave_out = rng.choices(("nothing", "color", "shape"), weights=(0.8, 0.1, 0.1))[0]
        if leave_out != "color" and with_color:
            words.append(o.color)
        words.append(rng.choice(SHAPE_SYNONYMS[o.shape]) if leave_out != "shape" else "shape")
        phrase = "a " + " ".join(words)
        if rng.random() < 0.3:
            phrase += f" on the {o.position}" if o.position != "middle" else " in the middle"
        parts.append(phrase)
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    template = rng.choice(
        (
            "{body}",
            "a photo of {body}",
            "an image of {body}",
            "a picture showing {body}",
            "{count} shapes: {body}",
            "there is {body}",
        )
    )
    if scene.count == 1 and template.startswith("{count}"):
        template = "a drawing of {body}"
    return template.format(body=body, count=NUMBERS[scene.count])


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    kind: str  # "color", "shape", "count", "position" or "yesno"


def questions(scene: Scene, rng: random.Random) -> list[QA]:
    """Every question type that has exactly one correct answer in this scene (one of each at most)."""
    out = [QA("How many objects are there?", NUMBERS[scene.count], "count")]
    shapes = [o.shape for o in scene.objects]
    colors = [o.color for o in scene.objects]
    unique_shape = [o for o in scene.objects if shapes.count(o.shape) == 1]
    unique_color = [o for o in scene.objects if colors.count(o.color) == 1]
    if unique_shape:
        o = rng.choice(unique_shape)
        out.append(QA(f"What color is the {o.shape}?", o.color, "color"))
    if unique_color:
        o = rng.choice(unique_color)
        out.append(QA(f"What shape is the {o.color} object?", o.shape, "shape"))
    pairs = [(o.color, o.shape) for o in scene.objects]
    unique_both = [o for o in scene.objects if pairs.count((o.color, o.shape)) == 1]
    if unique_both:
        o = rng.choice(unique_both)
        out.append(QA(f"Where is the {o.color} {o.shape}?", o.position, "position"))
    if rng.random() < 0.5:
        o = rng.choice(scene.objects)
        out.append(QA(f"Is there a {o.color} {o.shape}?", "yes", "yesno"))
    else:
        present = {(o.color, o.shape) for o in scene.objects}
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
        c, s = rng.choice(absent)
        out.append(QA(f"Is there a {c} {s}?", "no", "yesno"))
    return out


def vocabulary_sentences() -> list[str]:
    """Short sentences that use every word of the scene world (for tokenizer training)."""
    words = [*SHAPES, *COLORS, *SIZES, *POSITIONS, *NUMBERS, "yes", "no"]
    words += [w for syn in (*SHAPE_SYNONYMS.values(), *SIZE_SYNONYMS.values()) for w in syn]
    return [f"Question: What is {w}? Answer: {w}." for w in words]
