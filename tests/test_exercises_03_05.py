"""The self-checks of lessons 03-05 accept the worked solutions and reject the usual mistakes with a reason."""

import html

import pytest
from _tiny_blip2 import NUM_QUERY_TOKENS, tiny_blip2
from PIL import Image

from mmlab.blip2 import format_prompt
from mmlab.chat import ChatSession
from mmlab.exercises import lesson03, lesson04, lesson05


@pytest.fixture(scope="module")
def tiny():
    return tiny_blip2()


def test_lesson03(tiny, capsys):
    model, processor = tiny
    assert lesson03.check_image_tokens(NUM_QUERY_TOKENS, model, processor)
    assert not lesson03.check_image_tokens(17, model, processor)  # 4x4 patches + class token
    assert "class token" in capsys.readouterr().out
    assert lesson03.check_space_marker(288)
    assert not lesson03.check_space_marker(0xA0)
    assert "no-break space" in capsys.readouterr().out
    tokens = lesson03.readable_tokens(processor.tokenizer, lesson03.SENTENCE)
    assert tokens[0] == "</s>" and any(t.startswith("_") for t in tokens)
    assert lesson03.check_tokens(tokens, processor)
    assert not lesson03.check_tokens([t.replace("_", "Ġ") for t in tokens], processor)
    assert "'_'" in capsys.readouterr().out
    assert not lesson03.check_tokens(tokens[1:], processor)
    assert "start token" in capsys.readouterr().out
    pixels = processor(images=Image.new("RGB", (8, 8)), return_tensors="pt")["pixel_values"]
    image_embeds = model.vision_model(pixels).last_hidden_state
    queries = model.qformer(query_embeds=model.query_tokens, encoder_hidden_states=image_embeds).last_hidden_state
    assert lesson03.check_soft_prompt_shape(model.language_projection(queries).shape, model)
    assert not lesson03.check_soft_prompt_shape((1, NUM_QUERY_TOKENS, 31), model)
    from transformers import Blip2Config

    real = Blip2Config(vision_config={"image_size": 224, "patch_size": 14, "hidden_size": 1408})
    assert lesson03.check_real_image_embeds((1, 257, 1408), real)
    assert not lesson03.check_real_image_embeds((1, 256, 1408), real)
    assert "one more token" in capsys.readouterr().out
    assert not lesson03.check_real_image_embeds((1, 257, 768), real)
    for n in (1, 2, 3, 4, 5):
        lesson03.solution(n)
    assert "def readable_tokens" in capsys.readouterr().out


def _solution(n: int, name: str):
    namespace: dict = {}
    exec(lesson04.EXERCISES[n].code, namespace)  # noqa: S102 - our own worked solution; the markers are comments
    return namespace[name]


def test_lesson04(tiny, capsys):
    assert lesson04.check_chat_prompt(_solution(1, "chat_prompt"))
    assert not lesson04.check_chat_prompt(lambda q, h: _solution(1, "chat_prompt")(q, h) + " ")
    assert "space" in capsys.readouterr().out
    assert not lesson04.check_chat_prompt(lambda q, h: f"Question: {q} Answer:")  # the history left out
    assert "1 earlier turn(s)" in capsys.readouterr().out
    _, processor = tiny
    prompt = "Question: How many objects are there? Answer:"
    measured = processor(images=Image.new("RGB", (32, 32)), text=prompt, return_tensors="pt").input_ids.shape[1]
    assert lesson04.check_input_length(processor, prompt, measured)
    assert not lesson04.check_input_length(processor, prompt, len(processor.tokenizer.tokenize(prompt)))
    assert "the prompt alone" in capsys.readouterr().out
    assert lesson04.check_accuracy(lesson04.accuracy)
    assert not lesson04.check_accuracy(lambda a, t: sum(x == y for x, y in zip(a, t)) / len(t))
    assert lesson04.check_setting("b") and not lesson04.check_setting("c") and not lesson04.check_setting("z")
    for n in (1, 2, 3, 4):
        lesson04.solution(n)


def test_lesson05(tiny, capsys):
    model, processor = tiny
    prompt = "Question: What color is the circle? Answer: red. Question: How many objects are there? Answer: two. " \
             "Question: Where is the circle? Answer:"
    assert lesson05.check_prompt(prompt)
    assert not lesson05.check_prompt(prompt.replace("red.", "red"))
    assert "full stop" in capsys.readouterr().out
    assert lesson05.check_to_html(html.escape)
    assert not lesson05.check_to_html(lambda t: t.replace("<", "&lt;").replace(">", "&gt;"))  # & not escaped
    assert not lesson05.check_to_html(lambda t: t)

    class UndoSession(ChatSession):
        def undo(self):
            return self.history.pop() if self.history else None

    class WrongUndo(ChatSession):
        def undo(self):
            return self.history.pop(0)

    image = Image.new("RGB", (16, 16), "red")
    assert lesson05.check_undo(UndoSession, model, processor, image)
    assert not lesson05.check_undo(WrongUndo, model, processor, image)
    namespace = {"processor": processor, "format_prompt": format_prompt, "lesson05": lesson05}
    exec(lesson05.EXERCISES[4].code, namespace)  # noqa: S102 - our own worked solution
    assert lesson05.check_turns_kept(namespace["predicted"], model, processor, image)
    assert not lesson05.check_turns_kept(namespace["predicted"] + 1, model, processor, image)
    assert "Count each candidate prompt" in capsys.readouterr().out
    for n in (1, 2, 3, 4):
        lesson05.solution(n)
