"""Lesson 04, captioning and visual question answering: self-checks and worked solutions."""

from __future__ import annotations

from mmlab.blip2 import format_prompt
from mmlab.exercises import Exercise, Verdict, solved, solved_function, verdict

_HISTORIES = (
    ("What color is the circle?", []),
    ("Where is it?", [("What color is the circle?", "red")]),
    ("Is there a square?", [("How many objects are there?", "two."), ("What shape is the red object?", "circle")]),
)


def check_chat_prompt(fn) -> Verdict:
    """Exercise 1: `fn(question, history)` must return the chapter's chat-like prompt, earlier turns first."""
    for question, history in _HISTORIES:
        want = format_prompt(question, history)
        try:
            got = fn(question, history)
        except Exception as error:  # noqa: BLE001 - the learner's code; report what went wrong
            return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
        if got != want:
            hint = (
                "Drop the space after the last 'Answer:': the model starts its answer with a space-marked token "
                "itself, and a lone trailing space is a token it rarely saw."
                if got == want + " " else
                f"For {question!r} after {len(history)} earlier turn(s) expected {want!r}, got {got!r}. Each earlier "
                "answer ends in one full stop, whether or not the model wrote one."
            )
            return verdict(False, "", hint)
    return verdict(True, "The earlier turns in front, the new question last, nothing after its 'Answer:': BLIP-2 "
                   "reads the history as part of the text it continues.", "")


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


_PREDICT_PROMPT = "Question: How many objects are there? Answer:"


def check_input_length(processor, prompt: str, predicted: int) -> Verdict:
    """Exercise 4: the number of tokens `processor(images=..., text=prompt)` gives, predicted before running it."""
    tokens = processor.tokenizer(prompt, add_special_tokens=False).input_ids
    want = processor.num_query_tokens + 1 + len(tokens)  # the <image> tokens, the start token, the prompt's tokens
    why = (f"{processor.num_query_tokens} <image> placeholders (one per query token), 1 start token "
           f"({processor.tokenizer.bos_token!r}), then the prompt's {len(tokens)} tokens: {want}.")
    if predicted == want:
        return verdict(True, why, "")
    if predicted == len(tokens):
        return verdict(False, "", "That is the prompt alone: what else does the processor put in front of it?")
    return verdict(False, "", f"Not {predicted}. Count what section 1's first cell printed for an empty prompt, "
                   "then add the prompt's tokens (processor.tokenizer.tokenize shows them).")


EXERCISES = {
    1: Exercise(solved("""
                turns = [f"Question: {q} Answer: {a.rstrip('.')}." for q, a in history]
                return " ".join([*turns, f"Question: {question} Answer:"])  # nothing after the last colon
                """, given="def chat_prompt(question, history):", indent=4),
                "lesson04.check_chat_prompt(chat_prompt)"),
    2: Exercise(solved_function(accuracy), "lesson04.check_accuracy(accuracy)", points=2),
    3: Exercise(solved('letter = "b"'), "lesson04.check_setting(letter)",
                "\n".join(f"({key}) {why}" for key, why in _SETTINGS.items()) + "\nSo the answer is (b)."),
    4: Exercise(solved("predicted = processor.num_query_tokens + 1 + len(processor.tokenizer.tokenize(prompt))",
                       given=f"prompt = {_PREDICT_PROMPT!r}"),
                "lesson04.check_input_length(processor, prompt, predicted)",
                "The processor puts one <image> placeholder per query token and the start token in front of the "
                "prompt's own tokens."),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
