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
MAX_OBJECTS = len(POSITIONS)  # one object per third at most

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
    max_objects: int = MAX_OBJECTS,
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


# Question templates by kind. The held-out ones are never trained on: they measure whether the model
# understands questions phrased in a way it has not seen. {shape}/{color} name the object asked about.
QUESTION_TEMPLATES = {
    "count": ("How many objects are there?", "How many shapes are there?", "How many objects do you see?",
              "How many things are in the picture?", "What is the number of objects?", "Count the objects.",
              "Tell me how many objects there are.", "Please count the shapes.", "Could you count the objects for me?",
              "Give me the number of shapes."),
    "color": ("What color is the {shape}?", "What is the color of the {shape}?", "Which color is the {shape}?",
              "What color does the {shape} have?", "Tell me the color of the {shape}.", "The {shape} is what color?",
              "Tell me what color the {shape} is.", "Could you name the color of the {shape}?",
              "What is the {shape}'s color?", "Please name the color of the {shape}."),
    "shape": ("What shape is the {color} object?", "What is the shape of the {color} object?",
              "Which shape is {color}?", "What is the {color} shape?", "What kind of shape is the {color} one?",
              "What is the {color} thing?", "Tell me the shape of the {color} object.",
              "Could you name the shape of the {color} object?", "What shape does the {color} object have?",
              "Please name the {color} object's shape.", "What shape is the object whose color is {color}?"),
    "position": ("Where is the {color} {shape}?", "Where is the {color} {shape} located?",
                 "In which part of the image is the {color} {shape}?", "Where can I find the {color} {shape}?",
                 "On which side is the {color} {shape}?", "Where do I see the {color} {shape}?",
                 "Tell me the position of the {color} {shape}.", "Could you give the position of the {color} {shape}?",
                 "What is the position of the {color} {shape}?",
                 "Is the {color} {shape} on the left, in the middle or on the right?",
                 "Where is the {shape} whose color is {color}?"),
    "yesno": ("Is there a {color} {shape}?", "Is there any {color} {shape}?", "Do you see a {color} {shape}?",
              "Can you see a {color} {shape}?", "Does the picture show a {color} {shape}?",
              "Is a {color} {shape} in the picture?", "Tell me if there is a {color} {shape}.",
              "Could you spot a {color} {shape}?", "Does the image have a {color} {shape}?",
              "Is any {color} {shape} shown?", "Is there a {shape} with the color {color}?"),
}
HELD_OUT_TEMPLATES = {
    "count": ("How many shapes can you count?", "How many objects does the image contain?"),
    "color": ("Can you tell me the color of the {shape}?", "What color has the {shape}?"),
    "shape": ("Which shape has the color {color}?", "The {color} object is which shape?"),
    "position": ("Where exactly is the {color} {shape}?", "Tell me where the {color} {shape} is."),
    "yesno": ("Is there a {color} {shape} in the image?", "Do I see a {color} {shape} here?"),
}
# Follow-up questions about the object the previous turn was about ("it").
FOLLOW_UP_TEMPLATES = {
    "color": ("What color is it?", "And its color?", "Which color is it?"),
    "shape": ("What shape is it?", "And its shape?", "Which shape is it?"),
    "position": ("Where is it?", "And where is it?", "Where is it located?"),
    "size": ("What size is it?", "Is it big or small?", "How big is it?"),
}


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    kind: str  # "count", "color", "shape", "position", "yesno", "absent" or "size"
    subject: SceneObject | None = None  # the object asked about: what "it" means in a follow-up


def questions(scene: Scene, rng: random.Random, templates: str = "canonical", hard_no: float = 0.0) -> list[QA]:
    """One question of each type that has exactly one correct answer in this scene, about objects present.

    `templates`: "canonical" (the first of each kind, "What color is the triangle?"), "train" (any training
    template) or "heldout" (templates never trained on). `hard_no`: the share of "no" questions that pair a
    colour and a shape the scene has, on different objects (where it has such a pair), so "no" cannot be
    told from the colours and shapes present alone.
    """
    def ask(kind: str, **slots) -> str:
        options = HELD_OUT_TEMPLATES[kind] if templates == "heldout" else QUESTION_TEMPLATES[kind]
        return (options[0] if templates == "canonical" else rng.choice(options)).format(**slots)

    out = [QA(ask("count"), NUMBERS[scene.count], "count")]
    shapes = [o.shape for o in scene.objects]
    colors = [o.color for o in scene.objects]
    unique_shape = [o for o in scene.objects if shapes.count(o.shape) == 1]
    unique_color = [o for o in scene.objects if colors.count(o.color) == 1]
    if unique_shape:
        o = rng.choice(unique_shape)
        out.append(QA(ask("color", shape=o.shape), o.color, "color", o))
    if unique_color:
        o = rng.choice(unique_color)
        out.append(QA(ask("shape", color=o.color), o.shape, "shape", o))
    pairs = [(o.color, o.shape) for o in scene.objects]
    unique_both = [o for o in scene.objects if pairs.count((o.color, o.shape)) == 1]
    if unique_both:
        o = rng.choice(unique_both)
        out.append(QA(ask("position", color=o.color, shape=o.shape), o.position, "position", o))
    if rng.random() < 0.5:
        o = rng.choice(scene.objects)
        out.append(QA(ask("yesno", color=o.color, shape=o.shape), "yes", "yesno", o))
    else:
        pairs = absent_pairs(scene)
        mixed = [(c, s) for c, s in pairs if c in colors and s in shapes]
        if hard_no and mixed and rng.random() < hard_no:
            pairs = mixed
        c, s = rng.choice(pairs)
        out.append(QA(ask("yesno", color=c, shape=s), "no", "yesno"))
    return out


def absent_pairs(scene: Scene) -> list[tuple[str, str]]:
    """Every (colour, shape) that no object of the scene has."""
    present = {(o.color, o.shape) for o in scene.objects}
    return [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]


def absent_question(scene: Scene, rng: random.Random, templates: str = "train") -> QA:
    """A colour, shape or position question about an object the scene does not have; the answer says so."""
    absent_shapes = [s for s in SHAPES if s not in {o.shape for o in scene.objects}]
    absent_colors = [c for c in COLORS if c not in {o.color for o in scene.objects}]
    kinds = ["shape", "position"] + (["color"] if absent_shapes else [])
    kind = rng.choice(kinds)
    options = HELD_OUT_TEMPLATES[kind] if templates == "heldout" else QUESTION_TEMPLATES[kind]
    template = options[0] if templates == "canonical" else rng.choice(options)
    if kind == "color":
        shape = rng.choice(absent_shapes)
        return QA(template.format(shape=shape), f"there is no {shape}", "absent")
    if kind == "shape":
        color = rng.choice(absent_colors)
        return QA(template.format(color=color), f"there is no {color} object", "absent")
    color, shape = rng.choice(absent_pairs(scene))
    return QA(template.format(color=color, shape=shape), f"there is no {color} {shape}", "absent")


def follow_up(previous: QA, rng: random.Random) -> QA | None:
    """A question about the object of the `previous` turn, referred to as "it" (None if it had no object)."""
    o = previous.subject
    if o is None:
        return None
    kind = rng.choice([k for k in FOLLOW_UP_TEMPLATES if k != previous.kind])
    answer = {"color": o.color, "shape": o.shape, "position": o.position, "size": o.size}[kind]
    return QA(rng.choice(FOLLOW_UP_TEMPLATES[kind]), answer, kind, o)


def as_typed(question: str, rng: random.Random) -> str:
    """The question as a learner might type it: British or American spelling, contractions, any case, with or
    without the final punctuation."""
    if rng.random() < 0.3:
        question = question.replace("color", "colour")
    if rng.random() < 0.3:
        question = question.replace("What is", "What's").replace("Where is", "Where's")
    style = rng.random()
    if style < 0.3:
        question = question.lower()
    elif style < 0.36:
        question = question.upper()
    elif style < 0.42:
        question = question.title()
    ending = rng.random()
    if ending < 0.3:
        question = question.rstrip("?.!")
    elif ending < 0.36:
        question = question.rstrip("?.!") + "??"
    return question


def vocabulary_sentences() -> list[str]:
    """Short sentences that use every word of the scene world (for tokenizer training)."""
    words = [*SHAPES, *COLORS, *SIZES, *POSITIONS, *NUMBERS, "yes", "no"]
    words += [w for syn in (*SHAPE_SYNONYMS.values(), *SIZE_SYNONYMS.values()) for w in syn]
    return [f"Question: What is {w}? Answer: {w}." for w in words]
