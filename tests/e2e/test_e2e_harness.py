"""The harness itself: a broken chat must fail the check with a message that says what a learner would see."""

from __future__ import annotations

import pytest
from e2e_lab import ChatBox, check_reply

# A scratch notebook with three chats in front of stand-in sessions (no model needed): one that echoes, one whose
# ask() raises (the widget shows an error line), one whose send handler raises uncaught (the page shows nothing).
SCRATCH_CELLS = [
    '''from PIL import Image

from mmlab.chat import ChatWidget
from mmlab.chat.widget import Line


class StandInSession:
    """What ChatWidget uses of a ChatSession; `reply(question)` makes the answer."""

    def __init__(self, reply):
        self.reply, self.image, self.history, self.dropped_turns = reply, Image.new("RGB", (64, 64), "white"), [], 0

    def set_image(self, image):
        self.image = image
        self.reset()

    def reset(self):
        self.history = []

    def ask(self, question):
        answer = self.reply(question)
        self.history.append((question, answer))
        return answer


def unplugged(question):
    raise RuntimeError("the model is unplugged (a deliberately broken chat)")


class SilentChat(ChatWidget):
    """The printed chapter's failure: the send handler dies after showing the question, and nothing says so."""

    def _on_send(self, _=None):
        self.lines.append(Line("user", self.text.value.strip()))
        self._render()
        raise RuntimeError("send handler crashed")''',
    'ChatWidget(StandInSession(lambda question: f"echo: {question}"))',
    "ChatWidget(StandInSession(unplugged))",
    "SilentChat(StandInSession(unplugged))",
]


def test_check_reply_accepts_an_answer_and_names_each_failure():
    assert check_reply("q", ["You: a", "BLIP-2: b"], ["You: a", "BLIP-2: b", "You: q", "BLIP-2: yes"], "", 1) == "yes"
    with pytest.raises(AssertionError, match="with an error instead of an answer: Error: ValueError: bad"):
        check_reply("q", [], ["You: q", "Error: ValueError: bad"], "", 1)
    with pytest.raises(AssertionError, match="gave no response to 'q' within 5 s"):
        check_reply("q", [], ["You: q"], "thinking…", 5)
    with pytest.raises(AssertionError, match="answer to 'q' is empty"):
        check_reply("q", [], ["You: q", "BLIP-2: (no answer)"], "", 1)
    with pytest.raises(AssertionError, match="did not show the question 'q'"):
        check_reply("q", [], [], "", 1)


@pytest.mark.e2e
@pytest.mark.e2e_notebook("scratch/broken_chat.ipynb", cells=SCRATCH_CELLS)
def test_broken_chats_fail_the_check_with_a_readable_message(notebook):
    notebook.report.assert_clean()
    assert ChatBox(notebook.page, 0).ask("hello?").answer == "echo: hello?"

    with pytest.raises(AssertionError) as failure:
        ChatBox(notebook.page, 1).ask("Are you there?", timeout=20)
    message = str(failure.value)
    print(message)
    assert "answered 'Are you there?' with an error instead of an answer" in message
    assert "RuntimeError: the model is unplugged" in message

    with pytest.raises(AssertionError) as failure:
        ChatBox(notebook.page, 2).ask("Anyone?", timeout=4)
    message = str(failure.value)
    print(message)
    assert "gave no response to 'Anyone?' within 4 s" in message and "You: Anyone?" in message
