"""The remedies compared on the adding problem: which ones solve it, as T grows.

A fixed sweep: the adding problem at T = 50, 100, 200; five models, each with
gradient clipping by norm 1: a tanh RNN with PyTorch's default initialisation,
a tanh RNN with orthogonal initialisation, an IRNN (relu, identity
initialisation; Le et al. 2015), an LSTM and a GRU; three seeds each. It runs
through the lab's sweep (resumable: rerun the same command to finish an
interrupted sweep) and writes, into --out:

- results.parquet / results.csv, one row per run;
- remedies.md, a table of solved runs per model and T;
- remedies.png, the share of solved runs against T, per model.

Run: ``.venv/bin/python benchmarks/remedies.py --out benchmarks/out/remedies``
(the defaults are the figures the README quotes: hidden 64, 4000 steps of
batch 50, Adam 1e-3). The test suite runs the same code on a tiny budget.
"""

from __future__ import annotations

from pathlib import Path

from _sweep import adding_run, run_and_tabulate, sweep_parser
from rnngrad.lab.grid import Sweep
from rnngrad.lab.sweep import sweep_summary

MODELS = {
    "tanh RNN, default init": {"cell": "rnn", "init": "default"},
    "tanh RNN, orthogonal init": {"cell": "rnn", "init": "orthogonal"},
    "IRNN (relu, identity init)": {"cell": "relu", "init": "identity"},
    "LSTM": {"cell": "lstm", "init": "default"},
    "GRU": {"cell": "gru", "init": "default"},
}


def build(lengths: list[int], seeds: int, steps: int, hidden: int, batch: int, lr: float) -> Sweep:
    configs = [
        adding_run(
            length,
            seed,
            hidden=hidden,
            batch=batch,
            steps=steps,
            lr=lr,
            profile_every=1000,
            **model,
        )
        for length in lengths
        for model in MODELS.values()
        for seed in range(seeds)
    ]
    return Sweep(("seq_len", "cell", "init", "seed"), tuple(configs), "benchmarks/remedies.py")


def report(out: Path, lengths: list[int]) -> str:
    rows = sweep_summary(out)
    lines = ["| model | " + " | ".join(f"T = {t}" for t in lengths) + " |",
             "| --- | " + " | ".join("---" for _ in lengths) + " |"]  # fmt: skip
    shares: dict[str, list[float]] = {}
    for name, model in MODELS.items():
        cells = []
        for length in lengths:
            match = [r for r in rows if r["seq_len"] == length and r["cell"] == model["cell"]
                     and r["init"] == model["init"]]  # fmt: skip
            if not match:
                cells.append("—")
                shares.setdefault(name, []).append(float("nan"))
                continue
            row = match[0]
            steps = row["median_steps_to_solve"]
            cells.append(
                f"{row['solved']}/{row['runs']}" + (f" (median {steps} steps)" if steps else "")
            )
            shares.setdefault(name, []).append(row["solved"] / row["runs"])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "remedies.md").write_text(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.6))
    for name, values in shares.items():
        axis.plot(lengths, values, "o-", label=name)
    axis.set_xlabel("sequence length T")
    axis.set_ylabel("share of seeds solved")
    axis.set_ylim(-0.05, 1.05)
    axis.set_title("adding problem, clipping by norm 1", fontsize=10)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "remedies.png", dpi=110)
    plt.close(figure)
    return table


def main(argv: list[str] | None = None) -> str:
    parser = sweep_parser(__doc__.splitlines()[0], out="benchmarks/out/remedies", seeds=3,
                          steps=4000, hidden=64, batch=50, lr=1e-3)  # fmt: skip
    parser.add_argument("--lengths", default="50,100,200")
    args = parser.parse_args(argv)
    lengths = [int(v) for v in args.lengths.split(",")]
    sweep = build(lengths, args.seeds, args.steps, args.hidden, args.batch, args.lr)
    return run_and_tabulate(sweep, args, lambda: report(args.out, lengths))


if __name__ == "__main__":
    main()
