"""Exercises of the lessons: `lessonNN.check_*` functions say right or wrong, and why; `lessonNN.solution(n)`
prints a worked solution, so the notebooks stay free of answers until a learner asks for one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The result of a check: true when right. Printed when made, so a notebook shows no extra `True`/`False`."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def _ipython_display_(self) -> None:
        pass  # already printed


def verdict(ok: bool, right: str, wrong: str) -> Verdict:
    """Print one line: ✅ and why it is right, or ❌ and what to look at."""
    message = f"✅ Right. {right}" if ok else f"❌ Not yet. {wrong}"
    print(message)
    return Verdict(ok, message)
