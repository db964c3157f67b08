"""Put a screenshot into a notebook as a markdown cell attachment, so that static views show it.

Widgets do not render on GitHub or in any other static view of a notebook; a PNG attached to a markdown cell
(`![...](attachment:NAME)`) does, and also in JupyterLab and Colab. The cell that references the attachment
receives it; nothing else in the notebook changes.

    python tools/notebook_screenshot.py notebooks/05_chatbot.ipynb chat_widget.png shot.png

The browser tests write the chat widget's screenshot this way when asked (`MMLAB_E2E_UPDATE_SCREENSHOT=1`, see
tests/e2e/README.md).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import nbformat

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def attachment_cell(notebook, name: str):
    """The markdown cell whose text references `attachment:NAME`; a clear error if none or several do."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "markdown" and f"(attachment:{name})" in cell.source]
    if len(cells) != 1:
        raise ValueError(f"{len(cells)} markdown cells reference attachment:{name}; exactly one must "
                         f"(add `![description](attachment:{name})` to the cell that should show it).")
    return cells[0]


def read_attachment(path: Path, name: str) -> bytes | None:
    """The PNG attached under `name` to the cell that references it, or None when it has none yet."""
    cell = attachment_cell(nbformat.read(path, as_version=4), name)
    data = cell.get("attachments", {}).get(name, {}).get("image/png")
    return None if data is None else base64.b64decode(data)


def write_attachment(path: Path, name: str, png: bytes) -> None:
    """Attach `png` under `name` to the markdown cell of `path` that references it (replacing an older one)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"the screenshot for {name} is not a PNG file (it starts with {png[:8]!r}).")
    notebook = nbformat.read(path, as_version=4)
    cell = attachment_cell(notebook, name)
    cell["attachments"] = {name: {"image/png": base64.b64encode(png).decode("ascii")}}
    nbformat.write(notebook, path)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    notebook_path, attachment, image = sys.argv[1:]
    write_attachment(Path(notebook_path), attachment, Path(image).read_bytes())
