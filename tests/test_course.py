"""The nbgrader course: built from the exercises' worked solutions, released without them, graded by nbgrader.

The round trip runs nbgrader's own commands on lesson 03, the quickest lesson (about 7 s of cells on a 2-core CPU):
release the student version, submit three students' notebooks (the worked solutions, the untouched student version,
a typical mistake), autograde them into nbgrader's SQLite gradebook and read the scores back, then write feedback.
A fourth submission, graded in the same run, never finishes a cell: a stuck submission fails instead of hanging.
`MMLAB_COURSE_ALL=1 pytest tests/test_course.py` also grades the worked solutions of every lesson.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from mmlab import course
from mmlab.exercises import SOLUTION_BEGIN, SOLUTION_END

LESSON = "03"
ASSIGNMENT = f"lesson{LESSON}"
NOTEBOOK = "03_blip2_inputs"
# A typical mistake: the space marker is U+00A0, as the printed chapter says (exercise 2, 1 of the lesson's 5 points).
MISTAKE = {2: "code_point = 0xA0  # the no-break space"}
STUCK = {1: "import time\n\ntime.sleep(3600)"}  # exercise 1 never finishes
STUCK_TIMEOUT_S = 20
ALL_LESSONS = bool(os.environ.get("MMLAB_COURSE_ALL"))
# nbgrader runs `alembic` from PATH: the environment's scripts folder must be on it.
ENVIRONMENT = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def nbgrader(folder: Path, *args: str, timeout: float = 600) -> str:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=folder, env=ENVIRONMENT,
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A course folder with every lesson released."""
    folder = tmp_path_factory.mktemp("course")
    course.write_course(folder)
    nbgrader(folder, "generate_assignment", "lesson*")
    return folder


def release_of(folder: Path, lesson: str) -> Path:
    [notebook] = (folder / "release" / f"lesson{lesson}").glob("*.ipynb")
    return notebook


def submit(folder: Path, student: str, lesson: str, answers: dict[int, str]) -> None:
    """Submit the released notebook of `lesson` with the answer cells of `answers` (exercise -> code) filled in."""
    notebook = release_of(folder, lesson)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        number = int(grade_id[2:].split("-")[0]) if grade_id.endswith("-answer") else None
        if number in answers:
            cell.source = answers[number]
    target = folder / "submitted" / student / f"lesson{lesson}" / notebook.name
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)


def worked_answers(lesson: str) -> dict[int, str]:
    """Each answer cell as a learner who wrote the worked solution leaves it: no solution markers."""
    return {n: "\n".join(line for line in e.code.splitlines() if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END))
            for n, e in course.exercises(lesson).items()}


def test_every_lesson_notebook_matches_its_exercises():
    for lesson, notebook in course.lessons().items():
        nb = course.source_notebook(lesson, notebook)
        answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        exercises = course.exercises(lesson)
        assert [c.source for c in answers] == [e.code for e in exercises.values()]
        assert [c.source for c in tests] == [f"assert {e.check}" for e in exercises.values()]
        assert [c.metadata.nbgrader.points for c in tests] == [e.points for e in exercises.values()]
        original = nbformat.read(notebook, as_version=4)
        checks = [c.source for c in original.cells if c.cell_type == "code" and f"lesson{lesson}.check_" in c.source]
        for cell, exercise in zip(checks, exercises.values(), strict=True):  # the notebook poses the same check
            assert exercise.check.split("(")[0] in cell, (notebook.name, exercise.check)
        assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")


def test_a_notebook_out_of_step_with_its_exercises_is_refused(tmp_path):
    nb = nbformat.read(course.lessons()["04"], as_version=4)
    nb.cells = [c for c in nb.cells if "check_setting" not in c.source]
    nbformat.write(nb, tmp_path / "04_captioning_vqa.ipynb")
    with pytest.raises(ValueError, match="3 exercise cells .* defines 4"):
        course.write_course(tmp_path / "course", ["04"], notebooks=tmp_path)
    nb.cells.append(nbformat.v4.new_code_cell("lesson04.check_setting('b')"))
    nb.cells.append(nbformat.v4.new_code_cell("lesson04.check_setting('c')"))
    nbformat.write(nb, tmp_path / "04_captioning_vqa.ipynb")
    with pytest.raises(ValueError, match="5 exercise cells .* defines 4"):
        course.write_course(tmp_path / "course", ["04"], notebooks=tmp_path)


def test_existing_source_notebooks_are_kept_unless_forced(tmp_path, capsys):
    assert course.main(["--out", str(tmp_path), "--lessons", "04"]) == 0
    assert "lesson04/04_captioning_vqa.ipynb (5 points)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        course.main(["--out", str(tmp_path), "--lessons", "04"])
    assert "pass --force" in capsys.readouterr().err
    assert course.main(["--out", str(tmp_path), "--lessons", "04", "--force"]) == 0
    with pytest.raises(SystemExit):
        course.main(["--out", str(tmp_path), "--lessons", "09"])
    assert "No lesson 09" in capsys.readouterr().err


@pytest.mark.slow
def test_student_versions_contain_no_solution_text(released):
    for lesson, notebook in course.lessons().items():
        text = release_of(released, lesson).read_text(encoding="utf-8")
        assert SOLUTION_BEGIN not in text and ".solution(n)" not in text
        lesson_text = notebook.read_text(encoding="utf-8")  # code the lesson itself shows may appear, of course
        for exercise in course.exercises(lesson).values():
            inside = exercise.code.split(SOLUTION_BEGIN)[1].split(SOLUTION_END)[0]
            for line in {line.strip() for line in inside.splitlines()} - {""}:
                assert line in lesson_text or line not in text, f"lesson {lesson}: {line!r} is in the student version"
            assert f"assert {exercise.check}" in text  # the graded checks are handed out, locked


@pytest.mark.slow
def test_round_trip_scores_in_the_gradebook_and_feedback_and_a_stuck_submission_times_out(released):
    """One autograde run for four students (one nbgrader start-up, not two): the course's timeout is 300 s a cell;
    STUCK_TIMEOUT_S here (the lesson's longest cell takes about 4 s) keeps the stuck one quick."""
    submit(released, "ada", LESSON, worked_answers(LESSON))  # the worked solutions
    submit(released, "bo", LESSON, {})  # the student version as released
    submit(released, "cy", LESSON, {**worked_answers(LESSON), **MISTAKE})
    submit(released, "dee", LESSON, {**worked_answers(LESSON), **STUCK})
    out = nbgrader(released, "autograde", ASSIGNMENT, f"--Execute.timeout={STUCK_TIMEOUT_S}")
    with Gradebook(f"sqlite:///{released / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(ASSIGNMENT, s).score for s in ("ada", "bo", "cy", "dee")}
        total = gradebook.find_assignment(ASSIGNMENT).max_score
    points = sum(e.points for e in course.exercises(LESSON).values())
    exercise = course.exercises(LESSON)
    assert total == points == 6
    assert scores == {"ada": points, "bo": 0, "cy": points - exercise[2].points, "dee": points - exercise[1].points}
    assert "timeout" in out.lower()
    nbgrader(released, "generate_feedback", ASSIGNMENT)
    feedback = (released / "feedback" / "cy" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text(encoding="utf-8")
    assert "no-break space the printed chapter names" in feedback  # the self-check's reason, shown to the student


@pytest.mark.slow
@pytest.mark.skipif(not ALL_LESSONS, reason="grades every lesson (minutes): set MMLAB_COURSE_ALL=1")
def test_the_worked_solutions_of_every_lesson_get_full_marks(released):
    for lesson in course.lessons():
        submit(released, "sol", lesson, worked_answers(lesson))
        nbgrader(released, "autograde", f"lesson{lesson}", "--student", "sol")
    with Gradebook(f"sqlite:///{released / 'gradebook.db'}") as gradebook:
        scores = {lesson: gradebook.find_submission(f"lesson{lesson}", "sol").score for lesson in course.lessons()}
    assert scores == {lesson: sum(e.points for e in course.exercises(lesson).values()) for lesson in course.lessons()}
