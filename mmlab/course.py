"""An nbgrader course from the lessons: `python -m mmlab.course [--out course]` (or `./workbook course`).

For each lesson it writes `source/lessonNN/<notebook>.ipynb`: the lesson's notebook as it is, with each exercise
cell replaced by an answer cell (the worked solution of `mmlab.exercises.lessonNN.EXERCISES`, between nbgrader's
solution markers) and a locked test cell that asserts the same self-check, with points. nbgrader does the rest, in
the course folder: `nbgrader generate_assignment lessonNN` releases the student version (solutions removed),
`nbgrader autograde lessonNN` grades what is in `submitted/` into its SQLite gradebook, and `nbgrader
generate_feedback lessonNN` writes feedback. docs/instructors.md walks through it.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

from mmlab.exercises import Exercise

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COURSE_ID = "mmlab"
CELL_TIMEOUT_S = 300  # the longest lesson cell takes well under a minute on a laptop CPU
NBGRADER_CONFIG = f'''\
"""nbgrader settings of the mmlab course (written once by `python -m mmlab.course`; edit freely)."""

import os

c = get_config()  # noqa: F821 - nbgrader provides it
c.CourseDirectory.course_id = "{COURSE_ID}"

# Grade on the embedded default, offline on the CPU: no download, no GPU, the same numbers on every machine.
# Export MMLAB_MODE=hub before `nbgrader autograde` to grade on the chapter's checkpoints instead.
os.environ.setdefault("MMLAB_MODE", "offline")
os.environ.setdefault("MMLAB_DEVICE", "cpu")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

# A stuck submission fails instead of hanging: a cell that runs longer than this is interrupted and recorded as an
# error (its tests score zero), and grading goes on with the next cell and the next student.
c.Execute.timeout = {CELL_TIMEOUT_S}  # seconds per cell
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 120  # seconds for the kernel to start
'''

EXERCISES_HEADING = re.compile(r"^## Exercises", re.MULTILINE)
# The lessons point stuck learners to the worked solutions; a graded assignment says how it is graded instead.
STUCK = re.compile(r"Stuck\? `lesson\d\d\.solution\(n\)` prints a worked solution\.")
GRADED = ("Write each answer in the cell under its exercise, defining the name the title gives; the locked cell after "
          "it runs the self-check that grades it.")


def lessons(notebooks: Path = NOTEBOOKS) -> dict[str, Path]:
    """Lesson number ("00" ... "05") -> its notebook."""
    found = {path.name[:2]: path for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))}
    if not found:
        raise FileNotFoundError(
            f"No lesson notebooks in {notebooks}. The notebooks are not part of the pip package: run this in a clone "
            "of the repository, or give their folder with --notebooks."
        )
    return found


def exercises(lesson: str) -> dict[int, Exercise]:
    """The exercises of a lesson, numbered as in its notebook."""
    return importlib.import_module(f"mmlab.exercises.lesson{lesson}").EXERCISES


def source_notebook(lesson: str, notebook: Path):
    """The lesson's notebook with its exercise cells turned into nbgrader answer and test cells (outputs cleared)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata.pop("widgets", None)  # widget state of the last run
    defined = exercises(lesson)
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and EXERCISES_HEADING.search(c.source)),
                 len(nb.cells))
    posed = [i for i, c in enumerate(nb.cells)
             if i > start and c.cell_type == "code" and f"lesson{lesson}.check_" in c.source]
    if len(posed) != len(defined):
        raise ValueError(f"{notebook.name} has {len(posed)} exercise cells (code cells calling lesson{lesson}.check_* "
                         f"after '## Exercises') but mmlab.exercises.lesson{lesson} defines {len(defined)}: keep them "
                         "in step.")
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if i == start:
            cell.source = STUCK.sub(GRADED, cell.source)
        if i not in posed:
            cells.append(cell)
            continue
        number = posed.index(i) + 1
        exercise = defined[number]
        if number == 1:
            cells.append(_cell("code", f"from mmlab.exercises import lesson{lesson}", "exercises-import", locked=True))
        plural = "s" if exercise.points > 1 else ""
        cells.append(_cell("markdown", f"### Exercise {number} ({exercise.points} point{plural}): define "
                           f"`{exercise.answer}`", f"ex{number}-title", locked=True))
        cells.append(_cell("code", exercise.code, f"ex{number}-answer", solution=True))
        cells.append(_cell("code", f"assert {exercise.check}", f"ex{number}-check", grade=True,
                           points=exercise.points))
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def write_course(out: Path, only: list[str] | None = None, *, notebooks: Path = NOTEBOOKS, force: bool = False) -> list[Path]:
    """Write the course folder: nbgrader_config.py (once) and one source assignment per lesson; returns the notebooks."""
    import nbformat

    available = lessons(notebooks)
    chosen = only or list(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(f"No lesson {', '.join(unknown)}: choose from {', '.join(available)}.")
    written = []
    for lesson in chosen:
        target = out / "source" / f"lesson{lesson}" / available[lesson].name
        if target.exists() and not force:
            raise FileExistsError(f"{target} exists (maybe with your edits): pass --force to overwrite it.")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(lesson, available[lesson]), target)
        written.append(target)
    config = out / "nbgrader_config.py"
    if not config.exists():
        config.write_text(NBGRADER_CONFIG, encoding="utf-8")
    return written


def _cell(kind: str, source: str, grade_id: str, *, solution: bool = False, grade: bool = False,
          locked: bool = False, points: int = 0):
    """A cell with nbgrader's metadata (schema 3): an answer (solution), a graded test (grade) or a read-only cell."""
    import nbformat

    cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source, id=grade_id)
    metadata = {"grade": grade, "grade_id": grade_id, "locked": locked or grade, "schema_version": 3,
                "solution": solution}
    if grade:
        metadata["points"] = points
    cell.metadata["nbgrader"] = metadata
    return cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlab.course", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("course"), help="course folder (default: ./course)")
    parser.add_argument("--lessons", nargs="+", metavar="NN", help="lesson numbers, e.g. 02 04 (default: all)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help=f"lesson notebooks (default: {NOTEBOOKS})")
    parser.add_argument("--force", action="store_true", help="overwrite source notebooks that exist")
    args = parser.parse_args(argv)
    try:
        written = write_course(args.out, args.lessons, notebooks=args.notebooks, force=args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        parser.exit(2, f"mmlab.course: {error}\n")
    except ModuleNotFoundError as error:
        parser.exit(2, f"mmlab.course: {error.name} is missing: install the course tools with "
                       "`pip install -e '.[course]'` (or run `./workbook course`).\n")
    for path in written:
        points = sum(e.points for e in exercises(path.parent.name.removeprefix("lesson")).values())
        print(f"wrote {path} ({points} points)")
    print(f"next, with this environment active (nbgrader needs its scripts on PATH): cd {args.out} && "
          "nbgrader generate_assignment lessonNN  (docs/instructors.md walks through grading)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
