"""Drive the `mmlab.chat.ChatWidget` view of a notebook tab with the mouse and keyboard, as a learner does.

`ChatBox` finds a chat by its text box, types a question, clicks Send and Clear, and reads the transcript;
`check_reply` turns what the transcript shows after a question into an answer or a readable AssertionError.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from notebook_page import NotebookTab


@dataclass
class ChatReply:
    question: str
    answer: str
    lines: list[str] = field(default_factory=list)


def check_reply(question: str, before: list[str], after: list[str], status: str, waited: float, *,
                allow_empty: bool = False) -> str:
    """The answer the transcript shows to `question`, or an AssertionError that says what a learner would see.

    `before` and `after` are the transcript's lines ("You: ...", "BLIP-2: ...", "Error: ...", notes) before
    sending and after waiting `waited` seconds; `status` is the status line under the text box. The widget shows
    an empty answer of the model as "(no answer)": `allow_empty` accepts it (and returns "").
    """
    shown = "\n    ".join(after) or "(empty)"
    new = after[len(before):] if after[:len(before)] == before else after
    asked = [i for i, line in enumerate(new) if line == f"You: {question}"]
    if not asked:
        raise AssertionError(f"The chat did not show the question {question!r} in its transcript after {waited:.0f} s."
                             f"\n  transcript:\n    {shown}\n  status: {status!r}")
    replies = [line for line in new[asked[0] + 1:] if line.startswith(("BLIP-2:", "Error:"))]
    if not replies:
        raise AssertionError(f"The chat gave no response to {question!r} within {waited:.0f} s: the question is "
                             f"shown, no answer and no error line follows it (a learner sees the chat hang)."
                             f"\n  transcript:\n    {shown}\n  status: {status!r}")
    if replies[0].startswith("Error:"):
        raise AssertionError(f"The chat answered {question!r} with an error instead of an answer: {replies[0]}"
                             f"\n  transcript:\n    {shown}")
    answer = replies[0].removeprefix("BLIP-2:").strip()
    if allow_empty and answer == "(no answer)":
        return ""
    if not answer or answer == "(no answer)":
        raise AssertionError(f"The chat's answer to {question!r} is empty ({replies[0]!r}).\n  transcript:\n    {shown}")
    return answer


class ChatBox:
    """The `index`-th ChatWidget in a notebook, found by its text box, driven with the keyboard and mouse."""

    PLACEHOLDER = "Ask about the image"

    def __init__(self, notebook: NotebookTab, index: int = 0):
        self.page = page = notebook.page
        self.root = notebook.panel.locator(".widget-vbox").filter(
            has=page.locator(f'input[placeholder^="{self.PLACEHOLDER}"]')).nth(index)
        self.text = self.root.locator(f'input[placeholder^="{self.PLACEHOLDER}"]')
        self.send = self.root.get_by_role("button", name="Send")
        self.clear = self.root.get_by_role("button", name="Clear")
        self.transcript = self.root.locator(":scope > .widget-html").first
        self.status_line = self.root.locator(":scope > .widget-html").last

    def lines(self) -> list[str]:
        """The transcript's lines as the page shows them (the "no messages" placeholder is no line)."""
        texts = [" ".join(text.split()) for text in
                 self.transcript.locator(".widget-html-content > div > div").all_inner_texts()]
        return [text for text in texts if text and text != "(no messages yet)"]

    def status(self) -> str:
        return " ".join(self.status_line.inner_text().split())

    def ask(self, question: str, *, timeout: float = 60, allow_empty: bool = False) -> ChatReply:
        """Type `question`, click Send, wait for the reply line; `check_reply` judges what the transcript shows."""
        self._require()
        self.root.scroll_into_view_if_needed()
        before = self.lines()
        self.text.click()
        self.text.fill(question)
        self.send.click()
        started = time.monotonic()
        after = before
        while time.monotonic() - started < timeout:
            after = self.lines()
            new = after[len(before):]
            if any(line.startswith(("BLIP-2:", "Error:")) for line in new) and self.send.is_enabled():
                break
            time.sleep(0.2)
        answer = check_reply(question, before, after, self.status(), time.monotonic() - started,
                             allow_empty=allow_empty)
        return ChatReply(question, answer, after)

    def clear_transcript(self, *, timeout: float = 15) -> list[str]:
        """Click Clear and return the transcript's lines once it has changed (or after `timeout`)."""
        self._require()
        before = self.lines()
        self.clear.click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.lines() == before and before:
            time.sleep(0.2)
        return self.lines()

    def _require(self) -> None:
        if self.root.count() == 0:
            raise AssertionError(f"No chat widget on the page: no text box whose placeholder starts with "
                                 f"{self.PLACEHOLDER!r} (did the widget render? is it shown by the last line of a cell?)")
