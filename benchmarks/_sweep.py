"""What the lab's sweep benchmarks share (remedies.py, long_memory.py, mnist1d_accuracy.py).

Each builds a fixed grid of training runs, runs what has not finished (resumable:
the runs' summaries are kept under ``--out``) and tabulates the finished ones.
The command line's budget options, the run-then-tabulate step and the line that
names the machine are the same for all three, and live here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnngrad.atomic import atomic_write_text
from rnngrad.errors import RnngradError
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.grid import Sweep
from rnngrad.lab.sweep import run_sweep

__all__ = [
    "adding_run",
    "lengths_argument",
    "lru_modes_kept",
    "median_shares",
    "replace_tables",
    "run_and_tabulate",
    "sweep_parser",
]


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
    parser.add_argument(
        "--docs", type=Path, nargs="*", default=[], metavar="FILE",
        help="Markdown files whose tables with the same header row are replaced by the new "
        "ones (and the figures copied into a figures/ folder beside them, where there is one)",
    )  # fmt: skip
    return parser


def adding_run(
    length: int,
    seed: int,
    *,
    hidden: int,
    batch: int,
    profile_every: int = 2000,
    task: str = "adding",
    **settings: Any,
) -> TrainConfig:
    """One adding-problem run (or, ``task``, another generated task's) as the lab's
    benchmarks set it up: clipping by norm 1, a held-out evaluation of 1000 sequences
    every 100 steps, a checkpoint every 500; ``settings`` name the cell and its options,
    the step budget and the learning rate."""
    return TrainConfig(
        task=task, seq_len=length, clip="norm:1.0", hidden=hidden, batch=batch, seed=seed,
        eval_every=100, eval_batch=1000, checkpoint_every=500, profile_every=profile_every,
        **settings,
    )  # fmt: skip


def run_and_tabulate(sweep: Sweep, args: argparse.Namespace, tabulate: Callable[[], str]) -> str:
    """Run the unfinished runs (unless ``--report-only``), then print the machine line and
    the table that ``tabulate`` writes; return the table."""
    started = time.perf_counter()
    if not args.report_only:
        run_sweep(sweep, args.out, workers=args.workers)
    try:
        table = tabulate()
    except RnngradError as error:  # no runs to tabulate yet, and the like: one line
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {len(sweep.configs)} runs, "
          f"hidden {args.hidden}, {args.steps} steps of batch {args.batch}, lr {args.lr}, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    print(table)
    for document in args.docs:
        replaced = replace_tables(document, table)
        print(f"{document}: {replaced} table(s) replaced")
        figures = document.parent / "figures"  # the site's figures, beside the page
        for plot in sorted(args.out.glob("*.png")) if figures.is_dir() else ():
            shutil.copyfile(plot, figures / plot.name)
            print(f"{figures / plot.name}: copied from {plot}")
    return table


def _table_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """``(first, end)`` line ranges of the Markdown tables in ``lines``."""
    blocks, start = [], None
    for number, line in enumerate([*lines, ""]):
        inside = line.startswith("|")
        if inside and start is None:
            start = number
        elif not inside and start is not None:
            blocks.append((start, number))
            start = None
    return blocks


def lengths_argument(minimum: int, what: str = "lengths") -> Callable[[str], tuple[int, ...]]:
    """An ``argparse`` type: comma-separated whole numbers ``>= minimum`` (``""``: none)."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {what} such as 200,1000, got {text!r}"
            ) from None
        if any(value < minimum for value in values):
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {text!r}")
        return values

    return parse


def replace_tables(document: Path, tables: str) -> int:
    """Replace each table of ``document`` whose header row is that of one of ``tables``
    (Markdown tables separated by blank lines) by that table; the file is rewritten
    atomically, and only when something changed. Returns how many tables matched."""
    new = {}
    for block in tables.strip().split("\n\n"):
        rows = block.strip().splitlines()
        if rows and rows[0].startswith("|"):
            new[rows[0]] = rows
    before = document.read_text(encoding="utf-8")
    lines = before.split("\n")
    replaced = 0
    for first, end in reversed(_table_blocks(lines)):
        rows = new.get(lines[first])
        if rows is not None:
            lines[first:end] = rows
            replaced += 1
    text = "\n".join(lines)
    if text != before:
        atomic_write_text(document, text)
    return replaced


def lru_modes_kept(run: Path, steps: int) -> list[float] | None:
    """Per LRU layer of a finished run's final model (bottom first), the share of its
    eigenvalues with ``|lambda|^T > e^-2``: the modes that keep at least ``e^-2`` of a
    signal over the ``T`` steps, the textbook criterion mode by mode. Read from the run's
    ``eigenvalues.json`` (the moduli, committed with the run), which is written from its
    checkpoint the first time; ``None`` for a run with neither."""
    cached = run / "eigenvalues.json"
    if cached.exists():
        moduli = json.loads(cached.read_text())["moduli"]
    elif (run / "summary.json").exists() and (run / "checkpoint.pt").exists():
        import torch

        state = torch.load(run / "checkpoint.pt", weights_only=True, map_location="cpu")["model"]

        def order(key: str) -> tuple[int, int]:  # rnn (the first layer), then upper.0, ...
            parts = key.split(".")
            return (0, 0) if parts[0] == "rnn" else (1, int(parts[1]))

        keys = sorted((k for k in state if k.endswith("nu_log")), key=order)
        moduli = [torch.exp(-torch.exp(state[k].double())).tolist() for k in keys]
        atomic_write_text(cached, json.dumps({"moduli": moduli}))
    else:
        return None
    threshold = math.exp(-2.0 / steps)
    return [sum(m > threshold for m in layer) / len(layer) for layer in moduli]


def median_shares(runs: list[list[float] | None]) -> str | None:
    """``8% / 5%``: per LRU layer, the median of :func:`lru_modes_kept` over the runs that
    have it; ``None`` where none has."""
    found = [r for r in runs if r is not None]
    if not found:
        return None
    per_layer = [sorted(values)[len(values) // 2] for values in zip(*found, strict=True)]
    return " / ".join(f"{share:.0%}" for share in per_layer)
