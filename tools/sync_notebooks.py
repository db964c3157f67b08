"""Write the Colab install cell into every notebook and the Colab links into the README.

Both come from `mmlab/_repo.py`, the one place that names the project's repository: a fork changes
REPO_URL there and runs `python tools/sync_notebooks.py`. `--check` changes nothing and exits 1 when a
notebook or the README is out of date (tests/test_notebooks_sync.py runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT))  # run as a script, the repository root is not on sys.path

MARKER = "# Colab only:"  # first line of the install cell: how the tool recognises an older version of it
PLACEHOLDER = "# COLAB INSTALL CELL"  # what a new notebook may hold in its first cell until the tool runs
LINKS_START, LINKS_END = "<!-- colab-links:start -->", "<!-- colab-links:end -->"
CHAPTERS = {  # notebook stem -> one-line summary for the README table
    "00_start_here": "What the workbook teaches, how to run it, the mode switch and the environment check",
    "01_vit_patching": "How a Vision Transformer cuts an image into patches and embeds them",
    "02_clip": "CLIP: image and text embeddings in one space, similarity and zero-shot labels",
    "03_blip2_inputs": "BLIP-2's inputs: the image processor, the tokenizer and the <image> query tokens",
    "04_captioning_vqa": "BLIP-2 at work: image captions and visual question answering",
    "05_chatbot": "A chatbot about an image: prompts, memory and an ipywidgets view",
    "06_train_clip": "Train a CLIP yourself: the contrastive loss, a live run on the CPU, and the colour shortcut",
    "07_train_bridge": "Train BLIP-2's bridge yourself: a fresh Q-Former between a frozen ViT and a frozen OPT, live on the CPU",
}


def install_cell_source() -> str:
    """The first cell of every notebook: installs mmlab in Colab, does nothing (and prints nothing) elsewhere."""
    from mmlab._repo import BRANCH, REPO_URL

    return (
        f"{MARKER} install mmlab from {REPO_URL} (a no-op anywhere else).\n"
        "# Without -U: pip keeps Colab's own torch, Jupyter and ipywidgets and adds only what is missing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "mmlab @ git+{REPO_URL}@{BRANCH}"'
    )


def colab_url(stem: str) -> str:
    from mmlab._repo import BRANCH, REPO_URL

    path = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{stem}.ipynb"


def readme_links() -> str:
    """The README's table of chapters with one Open-in-Colab badge each."""
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    rows = [f"| [{stem}](notebooks/{stem}.ipynb) | {summary} | [![Open In Colab]({badge})]({colab_url(stem)}) |"
            for stem, summary in CHAPTERS.items()]
    return "\n".join([LINKS_START, "| Notebook | What it covers | Colab |", "|---|---|---|", *rows, LINKS_END])


def synced_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook with its first cell set to the install cell (inserted if it has none yet)."""
    nb = nbformat.read(path, as_version=4)
    source = install_cell_source()
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "code" and first.source.startswith((MARKER, PLACEHOLDER)):
        if first.source != source:
            first.source, first.outputs, first.execution_count = source, [], None
    else:
        cell = nbformat.v4.new_code_cell(source)
        cell.id = "colab-install"
        nb.cells.insert(0, cell)
    return nb


def synced_readme(text: str) -> str:
    pattern = re.compile(re.escape(LINKS_START) + ".*?" + re.escape(LINKS_END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{README} has no {LINKS_START} ... {LINKS_END} block for the Colab links.")
    return pattern.sub(lambda _: readme_links(), text)


def sync(paths: list[Path], *, check: bool, readme: bool = True) -> list[Path]:
    """Bring notebooks (and the README) in line with mmlab/_repo.py; returns those that were out of date."""
    stale = []
    for path in paths:
        before = path.read_text(encoding="utf-8")
        after = nbformat.writes(synced_notebook(path)) + "\n"
        if nbformat.reads(before, as_version=4) != nbformat.reads(after, as_version=4):
            stale.append(path)
            if not check:
                path.write_text(after, encoding="utf-8")
    if readme:
        text = README.read_text(encoding="utf-8")
        if synced_readme(text) != text:
            stale.append(README)
            if not check:
                README.write_text(synced_readme(text), encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="only these notebooks (default: all, and the README)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    stale = sync(paths, check=args.check, readme=not args.notebooks)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    if args.check and stale:
        print("Run `python tools/sync_notebooks.py` to bring them in line with mmlab/_repo.py.")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
