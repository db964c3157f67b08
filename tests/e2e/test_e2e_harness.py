"""The harness itself: broken chats and error outputs fail the checks with messages that say what a learner would see;
a figure and a library warning pass."""

from __future__ import annotations

import pytest
from chat_driver import ChatBox, check_reply
from notebook_page import RunReport

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

def _cell(index, source, outputs, tags=(), count=1):
    return {"index": index, "type": "code", "source": source, "count": count, "tags": list(tags), "outputs": outputs}


def test_run_report_fails_on_error_outputs_and_missing_figures_not_on_warnings():
    error = {"type": "error", "ename": "ValueError", "evalue": "no such image", "name": "", "text": ""}
    warning = {"type": "stream", "name": "stderr", "text": "UserWarning: deprecated", "ename": "", "evalue": ""}
    cells = [_cell(0, "# load\nimages = load()", [warning]), _cell(1, "show(images)", [error]),
             _cell(2, "after()", [], count=None), _cell(3, "raise KeyError", [error], tags=["raises-exception"])]
    report = RunReport("lesson", cells, [{"cell": 1, "complete": True, "width": 0, "height": 0}], [], [], 1.0)
    with pytest.raises(AssertionError) as failure:
        report.assert_clean()
    message = str(failure.value)
    assert "lesson: the page shows 1 problem(s)" in message
    assert "error output in cell 1 (show(images)): ValueError: no such image" in message
    assert "cell 0: UserWarning: deprecated" in message and "KeyError" not in message
    with pytest.raises(AssertionError, match="found 1 image\\(s\\), 1 of them not rendered"):
        report.assert_images(1)
    RunReport("lesson", cells[:1], [], [], [], 1.0).assert_clean()
    with pytest.raises(AssertionError, match="never executed: cell 2"):
        RunReport("lesson", cells[2:3], [], [], [], 1.0).assert_clean()


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
    assert ChatBox(notebook, 0).ask("hello?").answer == "echo: hello?"

    with pytest.raises(AssertionError) as failure:
        ChatBox(notebook, 1).ask("Are you there?", timeout=20)
    message = str(failure.value)
    print(message)
    assert "answered 'Are you there?' with an error instead of an answer" in message
    assert "RuntimeError: the model is unplugged" in message

    with pytest.raises(AssertionError) as failure:
        ChatBox(notebook, 2).ask("Anyone?", timeout=4)
    message = str(failure.value)
    print(message)
    assert "gave no response to 'Anyone?' within 4 s" in message and "You: Anyone?" in message
