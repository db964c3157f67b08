"""The chapter's prompt format for visual question answering and chat, shared by training and use."""

from __future__ import annotations

from collections.abc import Sequence


def qa_prompt(question: str, history: Sequence[tuple[str, str]] = ()) -> str:
    """`Question: ... Answer:` with earlier (question, answer) turns in front, oldest first.

    >>> qa_prompt("What shape is it?", [("What color is it?", "red")])
    'Question: What color is it? Answer: red. Question: What shape is it? Answer:'
    """
    turns = [f"Question: {q.strip()} Answer: {a.strip().rstrip('.')}." for q, a in history]
    return " ".join([*turns, f"Question: {question.strip()} Answer:"])
