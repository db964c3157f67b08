"""The committed notebooks: Colab install cell in sync with mmlab/_repo.py, real outputs, working nbval markers."""

import importlib.util
import io
import re
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from PIL import Image

from mmlab._repo import BRANCH, REPO_URL

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NBVAL_MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP"}


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_notebooks = load_tool("sync_notebooks")
notebook_screenshot = load_tool("notebook_screenshot")


def run_install_cell(in_colab: bool, monkeypatch) -> list[tuple[str, str]]:
    """Run the install cell as IPython would; returns the magics it called instead of running pip."""
    calls = []

    class Shell:
        def run_line_magic(self, name, line):
            calls.append((name, line))

    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    python = TransformerManager().transform_cell(sync_notebooks.install_cell_source())
    exec(python, {"get_ipython": Shell})  # noqa: S102 - our own generated cell
    return calls


def test_there_is_a_notebook_to_check():
    assert ROOT / "notebooks" / "00_start_here.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_is_the_generated_colab_install_cell(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "code"
    assert first.source == sync_notebooks.install_cell_source(), (
        f"{path.name}: the first cell differs from the template; run `python tools/sync_notebooks.py`.")
    assert first.outputs == [], f"{path.name}: the install cell printed something outside Colab"


def test_readme_colab_links_are_in_sync_and_cover_every_notebook():
    assert sync_notebooks.sync([], check=True) == [], "run `python tools/sync_notebooks.py`"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert sync_notebooks.colab_url(path.stem) in readme, f"{path.name} has no Colab link in the README"
    assert sync_notebooks.colab_url("02_clip") == (
        f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}"
        f"/blob/{BRANCH}/notebooks/02_clip.ipynb")


def test_install_cell_does_nothing_outside_colab(monkeypatch):
    assert run_install_cell(in_colab=False, monkeypatch=monkeypatch) == []


def test_install_cell_in_colab_installs_from_the_repo_without_upgrading(monkeypatch):
    [(magic, line)] = run_install_cell(in_colab=True, monkeypatch=monkeypatch)
    assert magic == "pip"
    assert line.startswith("install ") and f'"mmlab @ git+{REPO_URL}@{BRANCH}"' in line
    for flag in ("-U", "--upgrade", "--force-reinstall", "--no-deps"):
        assert flag not in line.split()


def test_the_sync_tool_replaces_a_placeholder_and_an_old_install_cell(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# COLAB INSTALL CELL (placeholder)"),
                                               nbformat.v4.new_markdown_cell("# Title")])
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    assert sync_notebooks.sync([path], check=True, readme=False) == [path]
    sync_notebooks.sync([path], check=False, readme=False)
    cells = nbformat.read(path, as_version=4).cells
    assert [c.source for c in cells] == [sync_notebooks.install_cell_source(), "# Title"]
    cells[0].source = "# Colab only: an older version"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    sync_notebooks.sync([path], check=False, readme=False)
    assert len(nbformat.read(path, as_version=4).cells) == 2  # replaced, not inserted again
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")]), path)
    sync_notebooks.sync([path], check=False, readme=False)
    assert [c.cell_type for c in nbformat.read(path, as_version=4).cells] == ["code", "markdown"]  # inserted


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_come_from_a_complete_run(path):
    """nbval compares only executed cells: every code cell must have run, in order, without errors."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    assert None not in counts, f"{path.name}: unexecuted code cells; run `./workbook refresh {path}`"
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: cells ran out of order ({counts})"
    errors = [c.source.splitlines()[0] for c in cells if any(o.output_type == "error" for o in c.outputs)]
    assert not errors, f"{path.name}: committed outputs hold errors in cells starting {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_markers_are_spelled_so_that_nbval_sees_them(path):
    """nbval honours a marker only as a whole comment line (`# NBVAL_IGNORE_OUTPUT`); give the reason on
    the next line. `# NBVAL_IGNORE_OUTPUT: reason` is silently ignored."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            comment = line.strip().lstrip("#").strip() if line.strip().startswith("#") else ""
            if re.match(r"NBVAL_\w+", comment):
                assert comment in NBVAL_MARKERS, (
                    f"{path.name}: {line.strip()!r} is not an nbval marker; write the marker alone on its line "
                    "and the reason on the next one.")


def test_the_chatbot_notebook_shows_a_screenshot_of_its_widget_where_widgets_do_not_render():
    png = notebook_screenshot.read_attachment(ROOT / "notebooks" / "05_chatbot.ipynb", "chat_widget.png")
    assert png is not None, ("05_chatbot has no chat_widget.png attachment: run "
                             "`MMLAB_E2E_UPDATE_SCREENSHOT=1 ./workbook test tests/e2e -k chat`")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    width, height = image.size
    assert 600 <= width <= 2000 and 150 <= height <= 1000, f"an odd size for a screenshot of the widget: {image.size}"
    assert len(png) < 300_000, f"the screenshot takes {len(png):,} bytes; keep the notebook small"
    colours = image.convert("RGB").resize((64, 16)).getcolors(64 * 16)
    assert colours is not None and len(colours) > 20, "the screenshot looks blank"


def test_the_screenshot_tool_attaches_to_the_referencing_cell_and_refuses_what_is_not_a_png(tmp_path):
    path = tmp_path / "lesson.ipynb"
    cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell("![the widget](attachment:w.png)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    assert notebook_screenshot.read_attachment(path, "w.png") is None
    buffer = io.BytesIO()
    Image.new("RGB", (8, 4), "white").save(buffer, format="PNG")
    notebook_screenshot.write_attachment(path, "w.png", buffer.getvalue())
    assert notebook_screenshot.read_attachment(path, "w.png") == buffer.getvalue()
    assert "attachments" not in nbformat.read(path, as_version=4).cells[0]
    with pytest.raises(ValueError, match="not a PNG"):
        notebook_screenshot.write_attachment(path, "w.png", b"GIF89a...")
    with pytest.raises(ValueError, match="0 markdown cells reference attachment:other.png"):
        notebook_screenshot.write_attachment(path, "other.png", buffer.getvalue())


def test_refresh_keeps_a_text_progress_bar_at_its_last_state(tmp_path):
    refresh_notebooks = load_tool("refresh_notebooks")
    cell = nbformat.v4.new_code_cell("for step in tqdm(range(3), file=sys.stdout): ...")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)
                    for text in ("\r", "steps:   0%|  | 0/3", "\r", "steps: 100%|##| 3/3", "\n", "done\n")]
    cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text="a warning\n"))
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    refresh_notebooks.collapse_carriage_returns(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stdout", "steps: 100%|##| 3/3\ndone\n"), ("stderr", "a warning\n")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short_enough_to_read(path):
    """The lessons' style: one idea a cell, at most 15 lines; split a longer cell."""
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(nbformat.read(path, as_version=4).cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > 15]
    assert not long, f"{path.name}: code cells over 15 lines (cell index, lines): {long}"
