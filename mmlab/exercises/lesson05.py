"""Lesson 05, a chatbot with memory: self-checks and worked solutions."""

from __future__ import annotations

import html

from mmlab.blip2 import Turn, format_prompt
from mmlab.exercises import Exercise, Verdict, solved, verdict

HISTORY = [("What color is the circle?", "red"), ("How many objects are there?", "two")]
QUESTION = "Where is the circle?"


def check_prompt(prompt: str) -> Verdict:
    """Exercise 1: the prompt a session sends for QUESTION after the turns in HISTORY."""
    want = format_prompt(QUESTION, HISTORY)
    if prompt == want:
        return verdict(True, "Oldest turn first, each answer closed with a full stop, the new question last.", "")
    if prompt.strip() == want:
        hint = "Almost: no spaces around the prompt; the model writes the space before its answer itself."
    elif "red." not in prompt:
        hint = "End each earlier answer with a full stop, as the model saw in training: 'Answer: red.'"
    elif prompt.find("How many") < prompt.find("What color"):
        hint = "Oldest turn first: the conversation reads top to bottom."
    else:
        hint = f"Expected {want!r}."
    return verdict(False, "", hint)


def check_to_html(fn) -> Verdict:
    """Exercise 2: `fn(text)` must make any text safe to put inside an HTML widget, showing it unchanged."""
    samples = [
        "<img src=x onerror=alert(1)>", "Tom & Jerry", "a < b > c", "plain words", "in HTML, write &lt; for <",
        "<script>alert('x')</script>",
    ]
    for text in samples:
        try:
            safe = fn(text)
        except Exception as error:  # noqa: BLE001 - the learner's code; report what went wrong
            return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
        if "<" in safe or ">" in safe:
            return verdict(False, "", f"{text!r} still contains markup: the browser would run it. Escape < and >.")
        if html.unescape(safe) != text:
            return verdict(False, "", f"{text!r} would show as {html.unescape(safe)!r}: escape & first, "
                                      "then < and >, so the learner sees the text unchanged.")
    return verdict(True, "The text shows as typed and nothing in it runs; html.escape does exactly this.", "")


def check_undo(session_class, model, processor, image) -> Verdict:
    """Exercise 3: a ChatSession subclass whose `undo()` removes and returns the last turn (None if there is none)."""
    try:
        session = session_class(model, processor, image, max_new_tokens=5)
        session.history = [Turn(q, a) for q, a in HISTORY]
        last = session.undo()
        empty = session_class(model, processor, image, max_new_tokens=5).undo()
    except Exception as error:  # noqa: BLE001
        return verdict(False, "", f"Your class raised {type(error).__name__}: {error}")
    if last != Turn(*HISTORY[-1]):
        return verdict(False, "", f"undo() returned {last!r}; it should return the last Turn it removed.")
    if session.history != [Turn(*HISTORY[0])]:
        return verdict(False, "", "After undo() only the first turn should remain in history.")
    if empty is not None:
        return verdict(False, "", "On an empty history undo() should return None instead of raising.")
    return verdict(True, "The next prompt is built from history, so the undone turn is forgotten at once.", "")


BUDGET = 30  # exercise 4's max_prompt_tokens


def check_turns_kept(predicted: int, model, processor, image) -> Verdict:
    """Exercise 4: how many of HISTORY's turns a session with max_prompt_tokens=BUDGET keeps in front of QUESTION."""
    from mmlab.chat import ChatSession

    session = ChatSession(model, processor, image, max_new_tokens=5, max_prompt_tokens=BUDGET)
    session.history = [Turn(q, a) for q, a in HISTORY]
    session.build_prompt(QUESTION)
    kept = len(HISTORY) - session.dropped_turns
    sizes = [session.prompt_tokens(format_prompt(QUESTION, HISTORY[len(HISTORY) - k:] if k else []))
             for k in range(len(HISTORY) + 1)]
    why = (f"With 0, 1 and 2 earlier turns the prompt has {', '.join(map(str, sizes))} tokens (start token included); "
           f"the newest turns that fit in {BUDGET}: {kept}, the oldest dropped first.")
    if predicted == kept:
        return verdict(True, why, "")
    return verdict(False, "", f"Not {predicted}. Count each candidate prompt's tokens with "
                   "len(processor.tokenizer(prompt).input_ids), newest turns first, and stop where it no longer fits.")


EXERCISES = {
    1: Exercise(solved("""
        turns = [f"Question: {question} Answer: {answer}." for question, answer in lesson05.HISTORY]
        prompt = " ".join([*turns, f"Question: {lesson05.QUESTION} Answer:"])"""),
        "lesson05.check_prompt(prompt)", "Oldest turn first, each answer closed with a full stop, the new question last:"),
    2: Exercise(solved("return html.escape(text)  # & first, then < and >, quotes too",
                       given="import html\n\n\ndef to_html(text):", indent=4),
                "lesson05.check_to_html(to_html)"),
    3: Exercise(solved("return self.history.pop() if self.history else None",
                       given="class UndoSession(ChatSession):\n    def undo(self):", indent=8),
                "lesson05.check_undo(UndoSession, model, processor, images[name])", points=2),
    4: Exercise(solved("""
        from mmlab.blip2 import format_prompt

        sizes = [len(processor.tokenizer(format_prompt(lesson05.QUESTION, lesson05.HISTORY[2 - k:] if k else [])).input_ids)
                 for k in range(3)]
        predicted = max(k for k in range(3) if sizes[k] <= lesson05.BUDGET)"""),
                "lesson05.check_turns_kept(predicted, model, processor, images[name])",
                "The session keeps the newest turns whose prompt still fits, so count the prompt with 0, 1 and 2 of "
                "them."),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
