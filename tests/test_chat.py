"""mmlab.chat: prompts with memory, truncation to the context, and the widget driven as a learner would."""

import io
from datetime import datetime

import numpy as np
import pytest
import torch
from _tiny_blip2 import CONTEXT, NUM_QUERY_TOKENS, tiny_blip2
from PIL import Image

from mmlab.blip2 import format_prompt
from mmlab.chat import ChatSession, ChatWidget, PromptTooLongError, Turn
from mmlab.chat.ipywidgets_compat import IPYWIDGETS_7
from mmlab.chat.widget import Line

MAX_NEW = 5


@pytest.fixture(scope="module")
def tiny():
    return tiny_blip2()


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


@pytest.fixture
def session(tiny, image):
    model, processor = tiny
    return ChatSession(model, processor, image, max_new_tokens=MAX_NEW)


def test_second_prompt_contains_the_first_turn(session):
    first = session.ask("How many?")
    assert session.history == [Turn("How many?", first)]
    prompt = session.build_prompt("What colour?")
    assert prompt.startswith("Question: How many? Answer: ")
    assert prompt.endswith(". Question: What colour? Answer:")


def test_long_history_drops_oldest_turns_and_fits(session):
    session.history = [Turn(f"Is object {i} red?", f"No, object {i} is blue") for i in range(12)]
    prompt = session.build_prompt("What is next?")
    used = NUM_QUERY_TOKENS + session.prompt_tokens(prompt) + MAX_NEW
    assert used <= CONTEXT
    assert 0 < session.dropped_turns < 12
    kept = session.history[session.dropped_turns:]
    assert prompt.startswith(f"Question: {kept[0].question}")  # oldest turns left out first
    assert "Is object 11 red?" in prompt and prompt.endswith("Question: What is next? Answer:")
    # One more turn would not have fitted: the truncation keeps as much as it can.
    one_more = format_prompt("What is next?", session.history[session.dropped_turns - 1:])
    assert NUM_QUERY_TOKENS + session.prompt_tokens(one_more) + MAX_NEW > CONTEXT
    session.ask("What is next?")  # and the model runs on it without going past its positions
    assert len(session.history) == 13


def test_question_that_cannot_fit_is_a_clear_error(session):
    with pytest.raises(PromptTooLongError, match="Ask a shorter question"):
        session.ask("Why " * CONTEXT)
    assert session.history == []


def test_max_prompt_tokens_caps_the_prompt(tiny, image):
    model, processor = tiny
    capped = ChatSession(model, processor, image, max_new_tokens=MAX_NEW, max_prompt_tokens=20)
    capped.history = [Turn("Is it red?", "Yes") for _ in range(5)]
    assert capped.prompt_tokens(capped.build_prompt("And now?")) <= 20
    assert capped.dropped_turns > 0
    with pytest.raises(PromptTooLongError, match="max_prompt_tokens is 20"):
        capped.build_prompt("Why " * 20)


def test_set_image_clears_history_and_reset_keeps_image(session, image):
    session.ask("How many?")
    session.reset()
    assert session.history == [] and session.image is not None
    session.ask("How many?")
    other = Image.new("RGB", (20, 20), "red")
    session.set_image(other)
    assert session.history == [] and session.image.size == (20, 20)
    with pytest.raises(TypeError, match="PIL.Image"):
        session.set_image("photo.jpg")


def test_widget_send_clear_and_enter(session):
    chat = ChatWidget(session)
    chat.text.value = "How many objects?"
    chat.send.click()
    assert len(session.history) == 1
    assert "How many objects?" in chat.transcript.value
    assert chat.text.value == "" and not chat.send.disabled
    assert "Memory: 1 turn" in chat.status.value
    chat.text.value = "And the colour?"
    chat.text._handle_string_msg(None, {"event": "submit"}, None)  # what the browser sends on Enter
    assert len(session.history) == 2
    assert session.history[0].question in session.build_prompt("x")  # memory carried
    chat.clear.click()
    assert session.history == [] and "How many" not in chat.transcript.value


def test_widget_escapes_html(session, monkeypatch):
    chat = ChatWidget(session)
    attack = "<img src=x onerror=alert(1)>"
    chat.text.value = attack
    chat.send.click()
    assert "&lt;img src=x onerror=alert(1)&gt;" in chat.transcript.value
    assert attack not in chat.transcript.value

    def bold_answer(**inputs):  # a model that answers with markup
        new = session.processor.tokenizer(" <b>bold</b>", add_special_tokens=False, return_tensors="pt")
        return torch.cat([inputs["input_ids"], new["input_ids"]], dim=1)

    monkeypatch.setattr(session.model, "generate", bold_answer)
    chat.text.value = "Say something"
    chat.send.click()
    assert "<b>bold</b>" not in chat.transcript.value and "&lt;b&gt;bold&lt;/b&gt;" in chat.transcript.value
    assert Line("model", "<b>bold</b>") in chat.lines


def test_widget_shows_model_errors(session, monkeypatch):
    def broken(**_):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(session.model, "generate", broken)
    chat = ChatWidget(session)
    chat.text.value = "Hello?"
    chat.send.click()
    assert "RuntimeError: CUDA out of memory" in chat.transcript.value
    assert "send again" in chat.transcript.value
    assert isinstance(chat.last_error, RuntimeError)
    assert session.history == [] and not chat.send.disabled  # not remembered, widget usable again


def test_widget_reports_too_long_question(session):
    chat = ChatWidget(session)
    chat.text.value = "Why " * CONTEXT
    chat.send.click()
    assert "PromptTooLongError" in chat.transcript.value


def browser_upload(upload, name: str, content: bytes) -> None:
    """Fill the upload box as the installed ipywidgets' front end does after the learner picks a file."""
    if IPYWIDGETS_7:  # the browser sends the files' metadata and bytes, then bumps a counter
        upload.metadata = [{"name": name, "type": "", "size": len(content), "lastModified": 0}]
        upload.data = [content]
        upload._counter += 1
    else:
        upload.value = ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                         "last_modified": datetime(2026, 1, 1)},)


def png(size: tuple[int, int], color, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_widget_changes_image(session):
    chat = ChatWidget(session, images={"red": Image.new("RGB", (30, 30), "red")})
    chat.text.value = "How many?"
    chat.send.click()
    chat.picker.value = "red"
    assert session.history == [] and session.image.getpixel((0, 0)) == (255, 0, 0)
    assert "New image: red" in chat.transcript.value
    browser_upload(chat.upload, "blue.png", png((10, 8), "blue"))
    assert session.image.size == (10, 8) and "New image: blue.png" in chat.transcript.value
    assert not chat.upload.value  # emptied, so the same file can be uploaded again
    browser_upload(chat.upload, "notes.txt", b"hello")
    assert "Could not read &#x27;notes.txt&#x27; as an image" in chat.transcript.value
    assert session.image.size == (10, 8) and not chat.upload.value
    browser_upload(chat.upload, "blue.png", png((10, 8), "blue"))  # the same file twice
    assert "New image: blue.png" in chat.transcript.value and "Could not read" not in chat.transcript.value


@pytest.mark.parametrize("value", [
    {"clear.png": {"metadata": {"name": "clear.png"}, "content": png((12, 9), (0, 0, 255, 0), "RGBA")}},
    ({"name": "clear.png", "content": memoryview(png((12, 9), (0, 0, 255, 0), "RGBA"))},),
], ids=["ipywidgets-7-format", "ipywidgets-8-format"])
def test_widget_reads_uploads_in_both_formats(session, value):
    """Colab ships ipywidgets 7, whose FileUpload value is a dict keyed by file name; 8 has a tuple."""
    chat = ChatWidget(session)
    chat._on_upload({"new": value})
    assert session.image.size == (12, 9) and session.image.mode == "RGB"
    assert "New image: clear.png" in chat.transcript.value


def test_widget_displays_in_a_notebook(session):
    """Leaving the widget last in a cell shows its view, by the display protocol of the installed ipywidgets."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    chat = ChatWidget(session)
    with capture_output() as shown:
        display(chat)
    views = [out.data.get("application/vnd.jupyter.widget-view+json") for out in shown.outputs]
    assert [view["model_id"] for view in views if view] == [chat.widget.model_id]


def test_empty_question_asks_for_one(session):
    chat = ChatWidget(session)
    chat.send.click()
    assert "Type a question first" in chat.status.value and session.history == []
