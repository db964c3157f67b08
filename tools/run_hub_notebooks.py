"""Run notebooks top to bottom in hub mode against the loopback Hub, and keep the executed copies to read.

    python tools/run_hub_notebooks.py                       # every notebook, tiny stand-ins, CPU, 4 training steps
    python tools/run_hub_notebooks.py notebooks/04_captioning_vqa.ipynb --out /tmp/hub-run
    python tools/run_hub_notebooks.py --size real --device cuda --steps 0   # the GPU rehearsal (benchmarks/)

The test suite runs the same thing without keeping outputs (`pytest --hub --nbval-lax`, in `./workbook
test-colab`); this tool is for reading what a Colab learner sees. The committed notebooks are never written.
Each notebook runs from an empty Hugging Face cache, so its downloads happen as in a fresh Colab runtime.
Prints one line a notebook: its seconds, and the path of its executed copy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from mmlab._kernel_env import HUB_UNSET, TRAINING_LESSONS, few_steps, hub_kernel_environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from loopback_hub import LoopbackHub
from stand_ins import SIZES, build

CELL_TIMEOUT_S = 1200


def run(path: Path, out: Path, environment: dict[str, str], steps: int) -> float:
    """Execute one notebook with `environment`; write the executed copy to `out`; return its seconds."""
    notebook = nbformat.read(path, as_version=4)
    if path.stem in TRAINING_LESSONS and steps:
        few_steps(notebook.cells, steps, name=path.name, why="run_hub_notebooks --steps")
    saved = dict(os.environ)
    os.environ.update(environment)
    for name in HUB_UNSET:
        os.environ.pop(name, None)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="mmlab-hub-cache-") as cache:
            os.environ["HF_HOME"] = cache
            NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--size", choices=SIZES, default="tiny", help="which stand-ins the Hub serves")
    parser.add_argument("--device", default="cpu", help="MMLAB_DEVICE for the kernels (cuda for the GPU rehearsal)")
    parser.add_argument("--steps", type=int, default=4, help="training lessons' steps (0: the lesson's own)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mmlab-hub-run")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    failed = []
    with LoopbackHub(build(args.size)) as hub:
        environment = hub_kernel_environment(hub.environment(), MMLAB_DEVICE=args.device)
        for path in paths:
            out = args.out / path.name
            start = time.perf_counter()
            try:
                seconds = run(path, out, environment, args.steps)
                print(f"{path.name}: {seconds:.0f} s -> {out}", flush=True)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:  # report it, run the others
                failed.append(path.name)
                print(f"{path.name}: FAILED after {time.perf_counter() - start:.0f} s ({type(error).__name__}); "
                      f"the executed copy up to the error is {out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
