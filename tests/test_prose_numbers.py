"""Numbers quoted in the lessons' text come from their outputs, or the allowlist says where from (tools/prose_numbers.py)."""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

spec = importlib.util.spec_from_file_location("prose_numbers", ROOT / "tools" / "prose_numbers.py")
prose_numbers = importlib.util.module_from_spec(spec)
sys.modules["prose_numbers"] = prose_numbers  # its dataclass looks itself up there
spec.loader.exec_module(prose_numbers)


def lesson(tmp_path: Path, markdown: str, printed: str, name: str = "99_lesson") -> Path:
    code = nbformat.v4.new_code_cell("print(...)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell(markdown)]), path)
    return path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_quoted_number_is_printed_or_explained(path):
    unexplained, stale = prose_numbers.check([path], prose_numbers.read_allowlist())
    assert not unexplained, "\n".join(
        f"c{q.cell}: {q.text} is printed by no output (...{q.context}...): quote this run's output, or add "
        "`notebook number reason` to tools/prose_numbers_allow.txt if it comes from elsewhere" for q in unexplained)
    assert not stale, f"allowlist entries no longer quoted in {path.name}: {stale}"


def test_a_stale_number_is_flagged_and_a_rounded_one_is_not(tmp_path):
    path = lesson(tmp_path, "In this run 96.5% were right, about 0.3 on average, over 1,500 steps; 18% trains.",
                  "right: 96.2%\nmean similarity 0.304\n1500 steps\ntrainable: 17.7%\n")
    unexplained, _ = prose_numbers.check([path], {})
    assert [q.text for q in unexplained] == ["96.5%"]


def test_small_counts_years_code_and_section_numbers_are_not_measurements(tmp_path):
    path = lesson(tmp_path, "## 5. Section\n\n13 queries (Liang et al., 2022), `permute(0, 2, 3, 1)`, U+0120, "
                            "[a link](https://example.org/0.42)\n\n1. a numbered step", "nothing\n")
    assert prose_numbers.quoted_numbers(path) == []


def test_the_allowlist_explains_a_number_and_reports_its_stale_entries(tmp_path):
    path = lesson(tmp_path, "The chapter prints 0.33.", "0.91\n")
    allowed = {("99_lesson", "0.33"): "the chapter's printed value", ("99_lesson", "0.19"): "no longer quoted"}
    unexplained, stale = prose_numbers.check([path], allowed)
    assert unexplained == [] and stale == ["99_lesson 0.19: no longer quoted"]


def test_an_allowlist_line_needs_a_reason(tmp_path):
    bad = tmp_path / "allow.txt"
    bad.write_text("02_clip 0.33\n", encoding="utf-8")
    with pytest.raises(ValueError, match="with a reason"):
        prose_numbers.read_allowlist(bad)
