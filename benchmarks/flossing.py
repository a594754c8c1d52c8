"""Gradient flossing against none on the delayed copy and XOR tasks, by delay.

Engelken (2023) trains tanh RNNs of 80 units with batch 16 on tasks whose answer lies a
delay ``d`` back, and finds that flossing the leading Lyapunov exponents towards zero
before training makes longer delays trainable. The same comparison through the lab:
a tanh RNN of 80 units, batch 16, Adam (lr 1e-3), clipping by norm 1, at most
``--steps`` steps, on ``delayed_copy`` and ``delayed_xor`` (rnngrad.lab.tasks: one bit
at step 1, read ``d`` steps later, with noise on a second input) at each delay of
``--delays``; each run once with flossing (``--floss K`` exponents, 500 steps before
training, the window the whole sequence) and once without (weight 0: the same ``K``
exponents recorded at each evaluation, nothing flossed), ``--seeds`` seeds each.
Written into --out: results.parquet/.csv, flossing.md (solved runs and median solve
step per task, delay and arm; median final loss; the leading exponent and the sum of
the ``K`` squared exponents at the first evaluation and the last) and flossing.png
(the solved share against the delay; lambda_1 during training at the longest delay).

Run: ``.venv/bin/python benchmarks/flossing.py [--workers N]`` (about two hours of one
core with the defaults). Resumable, like the other lab sweeps; the test suite runs it on
a tiny budget.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _sweep import lengths_argument, run_and_tabulate, sweep_parser
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.grid import Sweep
from rnngrad.lab.records import read_table_rows

TASKS = ("delayed_copy", "delayed_xor")
ARMS = (("none", 0.0), ("flossing", 1.0))


def build(args: argparse.Namespace) -> Sweep:
    settings: dict[str, Any] = {
        "cell": "rnn", "hidden": args.hidden, "batch": args.batch, "steps": args.steps,
        "lr": args.lr, "clip": "norm:1.0", "eval_every": 100, "eval_batch": 1000,
        "checkpoint_every": 500, "profile_every": args.steps, "floss": args.floss,
    }  # fmt: skip
    configs = [
        TrainConfig(task=task, seq_len=delay, seed=seed, floss_weight=weight, **settings)
        for task in TASKS
        for delay in args.delays
        for _, weight in ARMS
        for seed in range(args.seeds)
    ]
    return Sweep(("task", "seq_len", "floss_weight", "seed"), tuple(configs),
                 "benchmarks/flossing.py")  # fmt: skip


def _exponents(run: Path) -> list[dict[str, Any]]:
    path = run / "exponents.parquet"
    if not path.exists():
        return []
    return read_table_rows(path, required=("step", "phase", "i", "lambda"))


def _trained(rows: list[dict[str, Any]]) -> dict[int, list[float]]:
    """The recorded exponents during training, per evaluation step (``i`` in order)."""
    steps: dict[int, list[float]] = {}
    for row in sorted(rows, key=lambda r: (r["step"], r["i"])):
        if row["phase"] == "train" and row["lambda"] is not None:
            steps.setdefault(int(row["step"]), []).append(float(row["lambda"]))
    return steps


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def report(out: Path, sweep: Sweep, delays: tuple[int, ...]) -> str:
    required = ("task", "seq_len", "floss_weight", "solved", "final_loss")
    rows = read_table_rows(out / "results.parquet", required=required)
    header = " | ".join(f"d = {d}" for d in delays)
    solved_lines = [f"| task, arm | {header} |", "| --- |" + " --- |" * len(delays)]
    exponent_lines = [
        f"| lambda_1 / sum lambda_i^2, first and last evaluation | {header} |",
        "| --- |" + " --- |" * len(delays),
    ]
    curves: dict[str, dict[int, list[float]]] = {}
    for task in TASKS:
        for arm, weight in ARMS:
            solved_cells, exponent_cells = [], []
            for delay in delays:
                match = [r for r in rows if r["task"] == task and r["seq_len"] == delay
                         and r["floss_weight"] == weight]  # fmt: skip
                if not match:
                    solved_cells.append("—")
                    exponent_cells.append("—")
                    continue
                solved = sum(bool(r["solved"]) for r in match)
                steps = _median([r["solved_at"] for r in match if r["solved"]])
                loss = _median([r["final_loss"] for r in match if r["final_loss"] is not None])
                solved_cells.append(
                    f"{solved}/{len(match)} (median {steps} steps)" if solved
                    else f"{solved}/{len(match)} (loss {loss:.3g})" if loss is not None
                    else f"{solved}/{len(match)} (diverged)"
                )  # fmt: skip
                firsts, lasts, first_squares, last_squares = [], [], [], []
                configs = [c for c in sweep.configs if c.task == task and c.seq_len == delay
                           and c.floss_weight == weight]  # fmt: skip
                for config in configs:
                    trained = _trained(_exponents(out / "runs" / config.key()))
                    if not trained:
                        continue
                    first, last = trained[min(trained)], trained[max(trained)]
                    firsts.append(first[0])
                    lasts.append(last[0])
                    first_squares.append(sum(v * v for v in first))
                    last_squares.append(sum(v * v for v in last))
                    if delay == max(delays):
                        curves.setdefault(f"{task}, {arm}", {}).update(
                            {s: v[:1] for s, v in trained.items()}
                        )
                if firsts:
                    exponent_cells.append(
                        f"{_median(firsts):.3f} → {_median(lasts):.3f} / "
                        f"{_median(first_squares):.3f} → {_median(last_squares):.3f}"
                    )
                else:
                    exponent_cells.append("—")
            solved_lines.append(f"| {task}, {arm} | " + " | ".join(solved_cells) + " |")
            exponent_lines.append(f"| {task}, {arm} | " + " | ".join(exponent_cells) + " |")
    table = "\n".join(solved_lines) + "\n\n" + "\n".join(exponent_lines) + "\n"
    (out / "flossing.md").write_text(table)
    _plot(out, rows, delays, curves)
    return table


def _plot(out: Path, rows: list[dict[str, Any]], delays: tuple[int, ...],
          curves: dict[str, dict[int, list[float]]]) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (shares, exponents) = plt.subplots(1, 2, figsize=(10, 4))
    for task in TASKS:
        for arm, weight in ARMS:
            share = []
            for delay in delays:
                match = [r for r in rows if r["task"] == task and r["seq_len"] == delay
                         and r["floss_weight"] == weight]  # fmt: skip
                share.append(sum(bool(r["solved"]) for r in match) / len(match) if match else None)
            points = [(d, s) for d, s in zip(delays, share, strict=True) if s is not None]
            if points:
                style = "-" if arm == "flossing" else "--"
                shares.plot(*zip(*points, strict=True), marker="o", linestyle=style,
                            label=f"{task}, {arm}")  # fmt: skip
    shares.set(xlabel="delay d (steps)", ylabel="solved share of the seeds", ylim=(-0.05, 1.05))
    shares.legend(fontsize=8)
    for name, curve in sorted(curves.items()):
        steps = sorted(curve)
        exponents.plot(steps, [curve[s][0] for s in steps], label=name,
                       linestyle="-" if "flossing" in name else "--")  # fmt: skip
    exponents.axhline(0.0, color="grey", linewidth=0.8)
    exponents.set(xlabel="training step", ylabel="lambda_1 (nats per step)",
                  title=f"d = {max(delays)}, the last seed")  # fmt: skip
    exponents.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "flossing.png", dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> str:
    parser = sweep_parser(__doc__.splitlines()[0], out="benchmarks/results/flossing",
                          seeds=3, steps=3000, hidden=80, batch=16, lr=1e-3)  # fmt: skip
    parser.add_argument("--delays", type=lengths_argument(1, "delays"), default="50,100,200,300")
    parser.add_argument("--floss", type=int, default=10, help="exponents flossed (K)")
    args = parser.parse_args(argv)
    sweep = build(args)
    return run_and_tabulate(sweep, args, lambda: report(args.out, sweep, args.delays))


if __name__ == "__main__":
    main()
