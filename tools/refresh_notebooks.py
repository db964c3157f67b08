"""Re-execute notebooks in place so that their committed outputs come from a real run (for instructors).

    python tools/refresh_notebooks.py                    # every notebook in notebooks/
    python tools/refresh_notebooks.py notebooks/02_clip.ipynb

The kernels run offline on the embedded default, on the CPU, in KERNEL_ENVIRONMENT (mmlab/_kernel_env.py),
the same environment nbval gives them in `./workbook test` (the root conftest.py), so the refreshed
outputs are the ones the tests expect. Review the diff (`git diff notebooks/`) before committing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mmlab._kernel_env import KERNEL_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 600


def collapse_carriage_returns(path: Path) -> None:
    """Keep a text progress bar's last state: merge each cell's consecutive stream outputs of the same name, and of
    each line keep what follows its last carriage return, as a terminal or JupyterLab shows it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if (output.output_type == "stream" and outputs and outputs[-1].output_type == "stream"
                    and outputs[-1].name == output.name):
                outputs[-1].text += output.text
            else:
                outputs.append(output)
        for output in outputs:
            if output.output_type == "stream" and "\r" in output.text:
                output.text = "\n".join(line.rsplit("\r", 1)[-1] for line in output.text.split("\n"))
        cell.outputs = outputs
    nbformat.write(nb, path)


def refresh(path: Path) -> float:
    """Execute one notebook in place; returns the seconds it took."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
         f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}",
         "--ExecutePreprocessor.record_timing=False",  # no timestamps in the committed metadata
         str(path)],
        check=True, env={**os.environ, **KERNEL_ENVIRONMENT}, cwd=path.parent,
    )
    collapse_carriage_returns(path)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    from sync_notebooks import sync  # tools/ is sys.path[0] when this file runs as a script

    paths = [Path(p).resolve() for p in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"No such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    sync(paths, check=False, readme=False)  # the Colab install cell first, so that it runs (and stays silent) too
    for path in paths:
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        try:
            seconds = refresh(path)
        except subprocess.CalledProcessError:
            print(f"FAILED: {path.relative_to(ROOT)} (see the error above); its file is unchanged.", file=sys.stderr)
            return 1
        print(f"  done in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
