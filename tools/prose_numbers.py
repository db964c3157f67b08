"""Numbers quoted in a notebook's text must come from its outputs, or be explained in the allowlist.

    python tools/prose_numbers.py                         # every notebook in notebooks/
    python tools/prose_numbers.py notebooks/07_train_bridge.ipynb

A lesson's prose often quotes its own run ("96.2% of the attributes"). When a lesson is re-executed and the run
changes, such a sentence goes stale without any test failing. This tool reads each markdown cell, takes the
numbers that look measured (a decimal such as 0.33, a percentage such as 17.7%, an integer of three or more
digits such as 1,500, but not a year), and looks for each among the numbers printed by the same notebook's code cells (text
outputs, the committed ones, NBVAL_IGNORE_OUTPUT cells included). A quoted number matches an output that
rounds to it (prose "0.3" matches a printed 0.30 or 0.304; "18%" matches 17.7%). Small integers ("13 queries",
"section 5") are left alone: they are counts and labels far more often than measurements.

Numbers that rightly come from elsewhere (the chapter's printed results, a paper, the benchmark docs, the
arithmetic of a config) are listed in tools/prose_numbers_allow.txt, one per line with the notebook, the number
and the reason: `02_clip  0.33  the chapter prints it (its notebook's CLIP cell)`. An allowlist entry whose number
no longer appears in the notebook's prose is reported too, so the list cannot rot.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "tools" / "prose_numbers_allow.txt"

# A measured-looking number: 1,500 / 3,072 / 0.33 / 96.2% / 2.7 / 450. Not part of a word or an identifier.
NUMBER = re.compile(r"(?<![\w.\-\u2212+/#])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+)(\s?%)?(?![\w/])")
YEAR = re.compile(r"(19|20)\d\d")
FENCE = re.compile(r"```.*?```", re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
URL = re.compile(r"https?://\S+")
HEADING_NUMBER = re.compile(r"^(#+\s*)\d+(\.\d+)*\.?\s", re.MULTILINE)
LIST_NUMBER = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
TABLE_RULE = re.compile(r"^\|[-|: ]+\|$", re.MULTILINE)


@dataclass(frozen=True)
class Quoted:
    """One number quoted in a markdown cell."""

    notebook: str  # the notebook's stem, as in the allowlist
    cell: int  # 0-based index into nb["cells"]
    text: str  # as written, "96.2%"
    context: str  # the words around it

    @property
    def key(self) -> str:
        return self.text.replace(",", "").replace(" ", "")


def _value(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").replace("%", "").strip())
    except InvalidOperation:
        return None


def measured(text: str, percent: bool) -> bool:
    """Whether a number looks like a measurement rather than a count or a label."""
    digits = text.replace(",", "")
    if YEAR.fullmatch(digits) and not percent:
        return False  # a year ("Liang et al., 2022"), not a measurement
    return "." in digits or percent or len(digits) >= 3


def prose_text(source: str) -> str:
    """A markdown cell without the parts whose numbers are not prose: code, links, headings' and lists' numbers."""
    for pattern in (FENCE, INLINE_CODE, LINK_TARGET, URL, TABLE_RULE):
        source = pattern.sub(" ", source)
    source = HEADING_NUMBER.sub(r"\1", source)
    return LIST_NUMBER.sub(" ", source)


def quoted_numbers(notebook: Path) -> list[Quoted]:
    """The measured-looking numbers of the notebook's markdown cells."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = prose_text("".join(cell["source"]))
        for match in NUMBER.finditer(text):
            number, percent = match.group(1), bool(match.group(2))
            if measured(number, percent):
                context = " ".join(text[max(0, match.start() - 40):match.end() + 30].split())
                found.append(Quoted(notebook.stem, index, number + ("%" if percent else ""), context))
    return found


def printed_numbers(notebook: Path) -> set[tuple[Decimal, bool]]:
    """Every number in the notebook's text outputs, as (value, is a percentage)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    numbers = set()
    for cell in cells:
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")]
            texts.append(output.get("data", {}).get("text/plain", ""))
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                for match in NUMBER.finditer(text.replace("−", "-")):
                    value = _value(match.group(1))
                    if value is not None:
                        numbers.add((value, bool(match.group(2))))
    return numbers


def matches(quoted: Quoted, printed: set[tuple[Decimal, bool]]) -> bool:
    """Whether some printed number, rounded to the quoted number's decimals, is the quoted number."""
    want = _value(quoted.key)
    if want is None:
        return False
    places = -want.as_tuple().exponent if want.as_tuple().exponent < 0 else 0
    step = Decimal(1).scaleb(-places)
    percent = quoted.key.endswith("%")
    for value, is_percent in printed:
        candidates = [value]
        if percent and not is_percent:
            candidates.append(value * 100)  # prose 18% from a printed 0.177
        if any(c.quantize(step, rounding="ROUND_HALF_EVEN") == want or c.quantize(step) == want for c in candidates):
            return True
    return False


def read_allowlist(path: Path = ALLOWLIST) -> dict[tuple[str, str], str]:
    """(notebook stem, number as written without commas) -> reason."""
    allowed = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2].strip()) < 10:
            raise ValueError(f"{path.name}:{n}: want `notebook number reason` with a reason, got {line!r}")
        allowed[(parts[0], parts[1].replace(",", ""))] = parts[2].strip()
    return allowed


def check(notebooks: list[Path], allowlist: dict[tuple[str, str], str]) -> tuple[list[Quoted], list[str]]:
    """The quoted numbers no output prints and no allowlist entry explains, and the allowlist's stale entries."""
    unexplained, quoted_keys = [], set()
    for notebook in notebooks:
        printed = printed_numbers(notebook)
        for quoted in quoted_numbers(notebook):
            quoted_keys.add((quoted.notebook, quoted.key))
            if (quoted.notebook, quoted.key) not in allowlist and not matches(quoted, printed):
                unexplained.append(quoted)
    checked = {n.stem for n in notebooks}
    stale = [f"{stem} {number}: {reason}" for (stem, number), reason in allowlist.items()
             if stem in checked and (stem, number) not in quoted_keys]
    return unexplained, stale


def main(argv: list[str]) -> int:
    notebooks = [Path(p) for p in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    unexplained, stale = check(notebooks, read_allowlist())
    for quoted in unexplained:
        print(f"{quoted.notebook} c{quoted.cell}: {quoted.text} is printed by no output: ...{quoted.context}...")
    for entry in stale:
        print(f"allowlist entry no longer quoted: {entry}")
    return 1 if unexplained or stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
