"""What the lab's sweep benchmarks share (remedies.py, long_memory.py, mnist1d_accuracy.py).

Each builds a fixed grid of training runs, runs what has not finished (resumable:
the runs' summaries are kept under ``--out``) and tabulates the finished ones.
The command line's budget options, the run-then-tabulate step and the line that
names the machine are the same for all three, and live here.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from rnngrad.lab.sweep import Sweep, run_sweep

__all__ = ["run_and_tabulate", "sweep_parser"]


def sweep_parser(
    description: str, *, out: str, seeds: int, steps: int, hidden: int, batch: int, lr: float
) -> argparse.ArgumentParser:
    """``--out``, ``--seeds``, ``--steps``, ``--hidden``, ``--batch``, ``--lr``,
    ``--workers`` and ``--report-only``, with the benchmark's defaults; the caller adds
    what chooses its grid."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--hidden", type=int, default=hidden)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--report-only", action="store_true", help="tabulate the finished runs")
    return parser


def run_and_tabulate(sweep: Sweep, args: argparse.Namespace, tabulate: Callable[[], str]) -> str:
    """Run the unfinished runs (unless ``--report-only``), then print the machine line and
    the table that ``tabulate`` writes; return the table."""
    started = time.perf_counter()
    if not args.report_only:
        run_sweep(sweep, args.out, workers=args.workers)
    table = tabulate()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {len(sweep.configs)} runs, "
          f"hidden {args.hidden}, {args.steps} steps of batch {args.batch}, lr {args.lr}, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    print(table)
    return table
