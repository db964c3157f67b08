"""Exercises of the lessons: `lessonNN.check_*` functions say right or wrong, and why; `lessonNN.solution(n)`
prints a worked solution, so the notebooks stay free of answers until a learner asks for one.

Each lesson's `EXERCISES` holds its worked solutions as code that runs in the lesson's notebook, with the part a
learner writes between nbgrader's solution markers: `solution(n)` prints it, and `mmlab.course` builds graded
assignments from it (one source of truth for both).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"  # nbgrader's default markers


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


@dataclass(frozen=True)
class Exercise:
    """One exercise: its worked solution and the self-check that grades it, in the names of the lesson's notebook.

    `code` runs in the notebook after the lesson's cells; the lines between the solution markers are what a learner
    writes, the lines outside them (a function's signature, given inputs) are handed out as they are. `check` is the
    self-check call on what `code` defines; `note` explains the solution; `points` weighs it in a graded course.
    """

    code: str
    check: str
    note: str = ""
    points: int = 1

    @property
    def answer(self) -> str:
        """The name the check reads the learner's answer from (its first argument)."""
        return ast.parse(self.check).body[0].value.args[0].id

    def worked(self) -> str:
        """The worked solution as `solution(n)` prints it: the note, then the code without the markers."""
        code = "\n".join(line for line in self.code.splitlines() if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END))
        return f"{self.note}\n\n{textwrap.indent(code, '    ')}" if self.note else code


def solved(answer: str, *, given: str = "", indent: int = 0) -> str:
    """Code whose `answer` lines (indented by `indent` spaces) sit between the solution markers, after `given`."""
    answer = textwrap.dedent(answer).strip("\n").rstrip()
    region = textwrap.indent(f"{SOLUTION_BEGIN}\n{answer}\n{SOLUTION_END}", " " * indent)
    return f"{given.rstrip()}\n{region}" if given else region


def solved_function(function) -> str:
    """A function's source with its body, after the signature and docstring, between the solution markers."""
    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
    lines = source.rstrip().splitlines()
    start = body[0].lineno - 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    return solved("\n".join(lines[start:]), given="\n".join(lines[:start]), indent=indent)
