"""How long ``make demo`` takes: once from a fresh clone (the virtual environment and the
install included), then the built-in report alone, three runs each at one torch thread
and at the default, with medians and their ratio.

The goal: ``make demo`` under two minutes from a fresh clone on a 2-core machine.

Run: ``.venv/bin/python benchmarks/demo_time.py`` (the clone is made from this working
tree's last commit, into a temporary folder that is removed afterwards).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "rnngrad"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        fresh = _timed(["make", "demo"], clone)
        print(f"make demo from a fresh clone: {fresh:.1f} s (goal: under 120 s)")
        report = [str(clone / ".venv" / "bin" / "rnngrad"), "report", "--out", "page", "--force"]
        times: dict[str, list[float]] = {"1 thread": [], "default": []}
        for _ in range(3):  # interleaved, so that the machine's load falls on both alike
            for name in times:
                env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if name == "1 thread" else {})}
                times[name].append(_timed(report, clone, env))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"rnngrad report (built-in page), {name}: median {value:.1f} s of 3")
        print(f"ratio 1 thread / default: {medians['1 thread'] / medians['default']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
