"""Test accuracy on MNIST-1D and its shuffled variant, per cell, beside the published figures.

MNIST-1D (Greydanus & Kobak): 4000 training and 1000 test sequences of 40 steps, generated
offline by the mnist1d package. The paper's test accuracies: logistic regression 32%,
MLP 68%, CNN 94%, GRU 91%; with the steps shuffled by one fixed permutation: GRU 57%.
Goal: our GRU within 3 points of 91%, and ``lru`` at least as good as our GRU.

A fixed sweep through the lab (resumable: rerun the same command to finish an
interrupted one): the models below on ``mnist1d`` and ``mnist1d_shuffled``, three
seeds, the same budget for all (the paper trains 8000 steps of batch 100; the
default here is 4000, enough for the GRU to level off, so that the sweep fits a
small machine). Every model reads out its last state, except ``lru4-mean`` and
``gru-mean``, whose heads read the mean of the outputs over the steps (``readout
"mean"``, the pooling of Orvieto et al.'s classifiers). Writes into --out
results.parquet/.csv, mnist1d.md (median and range of the test accuracy per model)
and mnist1d.png.

Run: ``.venv/bin/python benchmarks/mnist1d_accuracy.py [--workers N]`` (defaults: hidden
128, 4000 Adam steps of batch 100, lr 2e-3, clipping by norm 1), into
benchmarks/results/mnist1d, whose runs' summaries and evaluations are committed
(``--report-only`` tabulates them again).
The test suite runs the same code on a tiny budget. (The script is not called
``mnist1d.py``: run as a script, its folder comes first on ``sys.path``, and a file of
that name would shadow the ``mnist1d`` package it generates the data with.)
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from _sweep import run_and_tabulate, sweep_parser
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.grid import Sweep
from rnngrad.lab.records import read_table_rows

MODELS: dict[str, dict[str, Any]] = {
    "gru": {"cell": "gru"},
    "lstm": {"cell": "lstm"},
    "lru": {"cell": "lru"},
    "lru4": {"cell": "lru", "layers": 4},  # four residual blocks with GLUs between
    # the head on the mean of the outputs over the steps, as Orvieto et al. pool theirs
    "lru4-mean": {"cell": "lru", "layers": 4, "readout": "mean"},
    "gru-mean": {"cell": "gru", "readout": "mean"},
    "mingru": {"cell": "mingru"},
    "minlstm": {"cell": "minlstm"},
    "indrnn": {"cell": "indrnn"},
}
TASKS = ("mnist1d", "mnist1d_shuffled")
PUBLISHED = {"mnist1d": "GRU 91% (CNN 94%, MLP 68%, logistic 32%)", "mnist1d_shuffled": "GRU 57%"}


def build(models: list[str], seeds: int, steps: int, hidden: int, batch: int, lr: float) -> Sweep:
    configs = [
        TrainConfig(
            task=task,
            seq_len=0,
            hidden=hidden,
            steps=steps,
            batch=batch,
            lr=lr,
            seed=seed,
            clip="norm:1.0",
            eval_every=250,
            checkpoint_every=500,
            profile_every=2000,
            **MODELS[model],
        )
        for task in TASKS
        for model in models
        for seed in range(seeds)
    ]
    return Sweep(
        ("task", "cell", "layers", "readout", "seed"),
        tuple(configs),
        "benchmarks/mnist1d_accuracy.py",
    )


def _matches(row: dict[str, Any], model: str) -> bool:
    wanted = MODELS[model]
    same_depth = (row.get("layers") or 1) == wanted.get("layers", 1)
    same_readout = (row.get("readout") or "last") == wanted.get("readout", "last")
    return bool(row["cell"] == wanted["cell"] and same_depth and same_readout)


def report(out: Path, cells: list[str]) -> str:
    rows = read_table_rows(out / "results.parquet", required=("task", "cell", "final_accuracy"))
    lines = ["| model | " + " | ".join(TASKS) + " |", "| --- | --- | --- |"]
    medians: dict[str, list[float]] = {}
    for cell in cells:
        entries = []
        for task in TASKS:
            values = [
                r["final_accuracy"]
                for r in rows
                if r["task"] == task and _matches(r, cell) and r["final_accuracy"] is not None
            ]
            if not values:
                entries.append("—")
                medians.setdefault(cell, []).append(float("nan"))
                continue
            middle = statistics.median(values)
            medians.setdefault(cell, []).append(middle)
            entries.append(f"{100 * middle:.1f}% ({100 * min(values):.1f}-{100 * max(values):.1f}, "
                           f"{len(values)} seeds)")  # fmt: skip
        lines.append(f"| {cell} | " + " | ".join(entries) + " |")
    lines.append("| published | " + " | ".join(PUBLISHED[t] for t in TASKS) + " |")
    table = "\n".join(lines) + "\n"
    (out / "mnist1d.md").write_text(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.6))
    positions = range(len(cells))
    for offset, task in enumerate(TASKS):
        axis.bar([p + 0.4 * offset for p in positions], [100 * medians[c][offset] for c in cells],
                 width=0.4, label=task)  # fmt: skip
    axis.axhline(91, color="gray", linestyle="--", linewidth=1, label="published GRU 91%")
    axis.axhline(57, color="gray", linestyle=":", linewidth=1, label="published GRU, shuffled, 57%")
    axis.set_xticks([p + 0.2 for p in positions], cells, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("test accuracy (%), median of seeds")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "mnist1d.png", dpi=110)
    plt.close(figure)
    return table


def main(argv: list[str] | None = None) -> str:
    parser = sweep_parser(__doc__.splitlines()[0], out="benchmarks/results/mnist1d", seeds=3,
                          steps=4000, hidden=128, batch=100, lr=2e-3)  # fmt: skip
    parser.add_argument("--models", default=",".join(MODELS), help=", ".join(MODELS))
    args = parser.parse_args(argv)
    cells = args.models.split(",")
    unknown = [c for c in cells if c not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; expected some of {', '.join(MODELS)}")
    sweep = build(cells, args.seeds, args.steps, args.hidden, args.batch, args.lr)
    return run_and_tabulate(sweep, args, lambda: report(args.out, cells))


if __name__ == "__main__":
    main()
