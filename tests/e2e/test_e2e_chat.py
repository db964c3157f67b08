"""The chatbot notebook in a real browser: a learner types questions, clicks Send and Clear, and reads the transcript.

With MMLAB_E2E_UPDATE_SCREENSHOT=1 the screenshot of the chat widget after two questions also becomes the
attachment that 05_chatbot shows in static views (tools/notebook_screenshot.py).
"""

from __future__ import annotations

import importlib.util
import os
import time

import pytest
from chat_driver import ChatBox
from lab_server import NOTEBOOKS, REPO
from notebook_page import SCREENSHOTS

CHATBOT = "notebooks/05_chatbot.ipynb"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.e2e_notebook(CHATBOT),
    pytest.mark.skipif(not (NOTEBOOKS / "05_chatbot.ipynb").exists(),
                       reason=f"{CHATBOT} does not exist yet: its chat check waits for it"),
]

FIRST, SECOND = "How many objects are there?", "What color is the triangle?"
MARKUP = "<img src=x onerror=alert(1)>"
ATTACHMENT = "chat_widget.png"  # the screenshot 05_chatbot shows where widgets do not render


def ask_minimal_chat(notebook, question: str, timeout: float = 60) -> str:
    """Type into the notebook's fifteen-line chat (text box, Ask button, HTML transcript); its transcript after."""
    page = notebook.page
    root = notebook.panel.locator(".widget-vbox").filter(has=page.locator('input[placeholder="Type a question"]'))
    assert root.count() == 1, "the fifteen-line chat (a text box 'Type a question' and an Ask button) is not on the page"
    root.scroll_into_view_if_needed()
    transcript = root.locator(".widget-html").first
    replies = transcript.inner_text().count("BLIP-2:")
    root.locator("input").fill(question)
    root.get_by_role("button", name="Ask").click()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and transcript.inner_text().count("BLIP-2:") == replies:
        time.sleep(0.2)
    return transcript.inner_text()


def widget_screenshot(notebook, chat: ChatBox) -> bytes:
    """A PNG of the whole chat widget (image column and chat column), kept with the run's screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / ATTACHMENT
    chat.root.locator("xpath=..").screenshot(path=str(path))  # the HBox around the chat column
    notebook.log.screenshots.append(path)
    return path.read_bytes()


def update_attachment(png: bytes) -> None:
    spec = importlib.util.spec_from_file_location("notebook_screenshot", REPO / "tools" / "notebook_screenshot.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.write_attachment(NOTEBOOKS / "05_chatbot.ipynb", ATTACHMENT, png)


def test_chatbot_notebook_answers_remembers_clears_and_escapes(notebook):
    report, page = notebook.report, notebook.page
    print(f"05_chatbot: ran in {report.seconds:.1f} s; screenshot {notebook.screenshot()}")
    report.assert_clean()

    mini = ask_minimal_chat(notebook, "Is there a red circle?")
    assert "You: Is there a red circle?\nBLIP-2:" in mini, f"the fifteen-line chat did not answer: {mini!r}"

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
    png = widget_screenshot(notebook, chat)
    if os.environ.get("MMLAB_E2E_UPDATE_SCREENSHOT") == "1":
        update_attachment(png)

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
