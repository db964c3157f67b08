"""Exercises of the lessons: `lessonNN.check_*` functions say right or wrong, and why; `lessonNN.solution(n)`
prints a worked solution, so the notebooks stay free of answers until a learner asks for one."""

from __future__ import annotations


def verdict(ok: bool, right: str, wrong: str) -> bool:
    """Print one line: ✅ and why it is right, or ❌ and what to look at. Returns `ok`."""
    print(f"✅ Right. {right}" if ok else f"❌ Not yet. {wrong}")
    return ok
