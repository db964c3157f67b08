"""Lesson 04, captioning and visual question answering: self-checks and worked solutions."""

from __future__ import annotations

from mmlab.blip2 import format_prompt
from mmlab.exercises import Exercise, Verdict, solved, solved_function, verdict

_QUESTIONS = ("What color is the circle?", "How many objects are there?", "Is there a red square?")


def check_vqa_prompt(fn) -> Verdict:
    """Exercise 1: `fn(question)` must return the chapter's VQA prompt for a question."""
    for question in _QUESTIONS:
        want = format_prompt(question)
        try:
            got = fn(question)
        except Exception as error:  # noqa: BLE001 - the learner's code; report what went wrong
            return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
        if got != want:
            hint = (
                "Drop the space after 'Answer:': the model learned to start its answer with a space-marked token "
                "itself, and a lone trailing space is a token it rarely saw."
                if got == want + " " else f"For {question!r} expected {want!r}, got {got!r}."
            )
            return verdict(False, "", hint)
    return verdict(True, "'Question: ... Answer:' with nothing after the colon: the model writes the answer.", "")


def accuracy(answers: list[str], truths: list[str]) -> float:
    """Share of answers whose first word is the truth, ignoring case and a trailing full stop."""
    right = [
        (answer.strip().split() or [""])[0].rstrip(".,!").lower() == truth.lower()
        for answer, truth in zip(answers, truths, strict=True)
    ]
    return sum(right) / len(right)


def check_accuracy(fn) -> Verdict:
    """Exercise 2: `fn(answers, truths)` scores VQA answers by their first word."""
    cases = [
        (["red", "two", "yes"], ["red", "two", "no"]),
        (["Red.", "two objects", ""], ["red", "two", "yes"]),
        (["blue circle", "The circle is red", "YES!"], ["blue", "red", "yes"]),
    ]
    for answers, truths in cases:
        want = accuracy(answers, truths)
        try:
            got = fn(answers, truths)
        except Exception as error:  # noqa: BLE001
            return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
        if abs(got - want) > 1e-9:
            return verdict(False, "", f"For answers {answers} and truths {truths} expected {want:.3f}, got {got:.3f}"
                                      " (an empty answer is wrong; 'Red.' counts as 'red').")
    return verdict(True, "First-word matching forgives 'Red.' and 'two objects' but not 'The circle is red': "
                   "a strict metric, fine for one-word answers.", "")


_SETTINGS = {
    "a": "max_new_tokens=5 only cuts captions shorter; greedy decoding still picks the same tokens every run.",
    "b": "do_sample=True draws each token at random from the model's distribution: runs differ unless you fix the seed.",
    "c": "batch_size=1 changes how many images run together, not the result: left padding keeps the captions equal.",
    "d": "A prompt changes what the caption continues from, but the same prompt gives the same caption every run.",
}


def check_setting(choice: str) -> Verdict:
    """Exercise 3: which setting makes two runs of `caption` on the same image give different texts?"""
    choice = choice.strip().lower()
    if choice not in _SETTINGS:
        return verdict(False, "", f"Answer with one of {sorted(_SETTINGS)}.")
    return verdict(choice == "b", _SETTINGS["b"], _SETTINGS[choice])


EXERCISES = {
    1: Exercise(solved('return f"Question: {question} Answer:"  # no space after the colon',
                       given="def vqa_prompt(question):", indent=4),
                "lesson04.check_vqa_prompt(vqa_prompt)"),
    2: Exercise(solved_function(accuracy), "lesson04.check_accuracy(accuracy)", points=2),
    3: Exercise(solved('letter = "b"'), "lesson04.check_setting(letter)",
                "\n".join(f"({key}) {why}" for key, why in _SETTINGS.items()) + "\nSo the answer is (b)."),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
