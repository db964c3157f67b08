"""The chatbot notebook in a real browser: a learner types questions, clicks Send and Clear, and reads the transcript."""

from __future__ import annotations

import pytest
from chat_driver import ChatBox
from lab_server import NOTEBOOKS

CHATBOT = "notebooks/05_chatbot.ipynb"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.e2e_notebook(CHATBOT),
    pytest.mark.skipif(not (NOTEBOOKS / "05_chatbot.ipynb").exists(),
                       reason=f"{CHATBOT} does not exist yet: its chat check waits for it"),
]

FIRST, SECOND = "How many objects are there?", "What color is the triangle?"
MARKUP = "<img src=x onerror=alert(1)>"


def test_chatbot_notebook_answers_remembers_clears_and_escapes(notebook):
    report, page = notebook.report, notebook.page
    print(f"05_chatbot: ran in {report.seconds:.1f} s; screenshot {notebook.screenshot()}")
    report.assert_clean()

    chat = ChatBox(notebook)
    assert chat.clear_transcript() == [], f"Clear did not empty the transcript: {chat.lines()}"
    # Every question must get a reply line; an empty answer of the model itself ("(no answer)") is judged last.
    replies = [chat.ask(FIRST, allow_empty=True), chat.ask(SECOND, allow_empty=True)]
    lines = chat.lines()
    asked = [line for line in lines if line.startswith("You:")]
    answered = [line for line in lines if line.startswith("BLIP-2:")]
    assert asked == [f"You: {FIRST}", f"You: {SECOND}"] and len(answered) == 2, (
        f"the transcript does not show both turns: {lines}")
    assert "Memory: 2 turns" in chat.status(), f"the chat does not remember two turns: {chat.status()!r}"

    assert chat.clear_transcript() == [], f"Clear did not empty the transcript: {chat.lines()}"
    assert "no messages yet" in chat.transcript.inner_text(), chat.transcript.inner_text()
    assert "cleared" in chat.status(), f"the status does not say the chat was cleared: {chat.status()!r}"

    replies.append(chat.ask(MARKUP, allow_empty=True))
    assert f"You: {MARKUP}" in chat.lines(), f"the question is not shown as text: {chat.lines()}"
    assert chat.transcript.locator("img").count() == 0, "the question became an <img> element in the transcript"
    assert page.locator('img[src="x"]').count() == 0, "an <img src=x> element appeared on the page"
    page.wait_for_timeout(500)  # an onerror handler would have fired by now
    assert not notebook.dialogs, f"the page raised dialogs (script ran from the chat text): {notebook.dialogs}"
    print(f"answers: {[reply.answer for reply in replies]}; screenshot {notebook.screenshot('05_chatbot-chat')}")

    empty = [reply.question for reply in replies if not reply.answer]
    if empty:
        # The page did its part (each question got the widget's reply line); the model itself answered "".
        pytest.xfail(f"every browser check passed, but the embedded BLIP-2 answered {empty} with empty text, shown as "
                     "'(no answer)' (expected while mmlab/checkpoints/blip2 holds the untrained scaffold; this test "
                     "passes once the trained weights answer)")
