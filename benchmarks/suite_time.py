"""How long does the test suite take, where does the time go, and are both cores busy?

    python benchmarks/suite_time.py [--workers N] [--top 15] [pytest arguments ...]

Runs pytest as `./workbook test` does (pytest-xdist, N workers; default: `workbook`'s, one per core up to 4),
with this file loaded as a pytest plugin that records every test's duration and worker. Then prints:
  - the wall time, and the CPU time of pytest and of every process it started and waited for (workers,
    notebook kernels, JupyterLab, Chromium), with CPU time / wall time: how many cores were busy on average;
  - each part (a test file, a notebook, or all of tests/e2e: the units conftest.py hands to one worker):
    its worker, its tests, its summed setup + call + teardown time and its share of the whole;
  - each worker's busy time, and the slowest single tests.
Run it with the interpreter of the environment under test (`.venv/bin/python benchmarks/suite_time.py`);
extra arguments go to pytest (`--quick`, `-m "not e2e"`, `tests/test_train.py`). Exits with pytest's status.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_ENV = "MMLAB_SUITE_TIME_LOG"


# --- the plugin half: loaded into pytest with `-p suite_time` --------------------------------------------------
_records: list[dict] = []


def pytest_runtest_logreport(report) -> None:
    """Under xdist the controller receives every worker's reports; without it, this process runs the tests."""
    node = getattr(report, "node", None)  # the xdist worker that ran it, on the controller
    _records.append({"nodeid": report.nodeid, "seconds": report.duration,
                     "worker": node.gateway.id if node is not None else "main"})


def pytest_unconfigure(config) -> None:
    if hasattr(config, "workerinput") or LOG_ENV not in os.environ:
        return  # a worker: its reports reach the controller, which writes them once
    Path(os.environ[LOG_ENV]).write_text(json.dumps(_records))


# --- the script half ------------------------------------------------------------------------------------------
def default_workers() -> int:
    """The same rule as `workbook`'s test_workers: MMLAB_TEST_WORKERS, else one per core up to 4."""
    if "MMLAB_TEST_WORKERS" in os.environ:
        return int(os.environ["MMLAB_TEST_WORKERS"])
    cores = min(os.cpu_count() or 1, 4)
    return cores if cores >= 2 else 0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(workers: int, pytest_args: list[str]) -> tuple[int, float, float, list[dict]]:
    """Run pytest; return its exit status, wall seconds, CPU seconds and the per-test records."""
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "records.json"
        env = {**os.environ, LOG_ENV: str(log),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "pytest", "-p", "suite_time", "-n", str(workers), *pytest_args]
        print("$", " ".join(command), flush=True)
        cpu_before, start = children_cpu_seconds(), time.perf_counter()
        status = subprocess.run(command, check=False, cwd=ROOT, env=env).returncode
        wall, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu_before
        records = json.loads(log.read_text()) if log.exists() else []
    return status, wall, cpu, records


def report(wall: float, cpu: float, records: list[dict], top: int) -> None:
    sys.path.insert(0, str(ROOT))
    from conftest import part_of  # the scheduler's own units

    parts: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "tests": set(), "workers": set()})
    per_test: dict[str, float] = defaultdict(float)
    busy: dict[str, float] = defaultdict(float)
    for r in records:
        part = parts[part_of(r["nodeid"])]
        part["seconds"] += r["seconds"]
        part["tests"].add(r["nodeid"])
        part["workers"].add(r["worker"])
        per_test[r["nodeid"]] += r["seconds"]
        busy[r["worker"]] += r["seconds"]
    total = sum(busy.values()) or 1.0
    print(f"\nwall {wall:.0f} s, CPU {cpu:.0f} s (user + system, all processes): {cpu / wall:.2f} cores busy on average")
    print(f"summed test time {total:.0f} s over {len(per_test)} tests\n")
    print(f"{'part':<48} {'worker':>8} {'tests':>6} {'seconds':>8} {'share':>6}")
    for name, part in sorted(parts.items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"{name:<48} {','.join(sorted(part['workers'])):>8} {len(part['tests']):>6} "
              f"{part['seconds']:>8.1f} {part['seconds'] / total:>6.1%}")
    print("\nworker busy time: " + ", ".join(f"{w} {s:.0f} s" for w, s in sorted(busy.items())))
    print(f"\nslowest {top} tests:")
    for nodeid, seconds in sorted(per_test.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {seconds:7.1f} s  {nodeid}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--workers", type=int, default=default_workers(), help="pytest-xdist workers (0: one process)")
    parser.add_argument("--top", type=int, default=15, help="how many of the slowest tests to list")
    args, pytest_args = parser.parse_known_args(argv)
    status, wall, cpu, records = run(args.workers, pytest_args)
    report(wall, cpu, records, args.top)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
