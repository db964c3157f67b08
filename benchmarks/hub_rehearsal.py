"""The GPU rehearsal of hub mode: real-size stand-ins through the loopback Hub, every notebook, memory against Colab's.

    python benchmarks/hub_rehearsal.py [--out rehearsal.json] [--skip-notebooks]

For a machine with a CUDA GPU (a lent one, or a Colab runtime with this repository). It builds the real-size stand-ins
(tools/stand_ins.py real: the chapter's architectures, random weights, about 16 GB of files; once, cached), serves
them on loopback (tools/loopback_hub.py) and measures:

- BLIP-2's load in hub mode, two ways, each in a fresh process from an empty Hugging Face cache: `load_blip2()` as
  the lessons call it, and `from_pretrained(..., device_map={"": 0})` straight to the GPU. For each: the peak GPU
  memory (torch.cuda.max_memory_allocated) against a T4's 15 GiB, and the peak host RAM (the process's maximum
  resident set) against Colab's 12.7 GB;
- every notebook top to bottom in hub mode on the GPU (tools/run_hub_notebooks.py), with its seconds.

It prints one JSON object (and writes it to --out); docs/loopback-hub.md records the figures with the card they
came from. The weights are random, so the texts mean nothing; sizes, memory and times are real.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from loopback_hub import LoopbackHub
from run_hub_notebooks import run
from stand_ins import build

from mmlab._kernel_env import HUB_UNSET, hub_kernel_environment

T4_GIB = 15.0  # a Colab T4's memory
COLAB_RAM_GB = 12.7  # a Colab runtime's RAM
# One BLIP-2 load in a fresh process; prints {"gpu_peak_gib", "host_peak_gb", "seconds", "dtype"} as JSON.
LOAD = """
import json, resource, sys, time, torch
import mmlab
start = time.perf_counter()
if sys.argv[1] == "load_blip2":
    mmlab.setup("hub", device="cuda")
    from mmlab.models import load_blip2
    model, _ = load_blip2()
else:
    from transformers import Blip2ForConditionalGeneration
    model = Blip2ForConditionalGeneration.from_pretrained("Salesforce/blip2-opt-2.7b", dtype=torch.float16,
                                                          device_map={"": 0})
torch.cuda.synchronize()
print(json.dumps({"seconds": round(time.perf_counter() - start, 1),
                  "gpu_peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                  "host_peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),
                  "dtype": str(next(model.parameters()).dtype)}))
"""


def hub_environment(hub: LoopbackHub, cache: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k not in HUB_UNSET}
    return inherited | hub_kernel_environment(hub.environment(), HF_HOME=cache, MMLAB_DEVICE="cuda")


def measure_load(hub: LoopbackHub, how: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="mmlab-rehearsal-") as cache:
        done = subprocess.run([sys.executable, "-c", LOAD, how], env=hub_environment(hub, cache), capture_output=True,
                              text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"fits_t4": result["gpu_peak_gib"] < T4_GIB, "fits_colab_ram": result["host_peak_gb"] < COLAB_RAM_GB}


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("hub_rehearsal.json"))
    parser.add_argument("--skip-notebooks", action="store_true", help="measure the loads only")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("hub_rehearsal needs a CUDA GPU; on a CPU run `./workbook test-colab` instead", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with torch.device("cuda"):  # random initialization of 3.7 B parameters: minutes on a CPU, seconds here
        folder = build("real")
    report = {"card": torch.cuda.get_device_name(0), "build_seconds": round(time.perf_counter() - start, 1),
              "torch": torch.__version__}
    with LoopbackHub(folder) as hub:
        report["blip2_load"] = {how: measure_load(hub, how) for how in ("load_blip2", "device_map")}
        if not args.skip_notebooks:
            notebooks = {}
            environment = hub_environment(hub, "")
            for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
                try:
                    notebooks[path.name] = round(run(path, args.out.parent / "executed" / path.name, environment, 0))
                except Exception as error:  # noqa: BLE001 - record it, go on with the other notebooks
                    notebooks[path.name] = f"FAILED: {type(error).__name__}: {str(error).splitlines()[-1][:300]}"
            report["notebook_seconds"] = notebooks
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
