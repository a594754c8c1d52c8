"""Where the two-block LRU stops solving the adding problem, and what does not move it.

The long-memory benchmark's LRU (two residual blocks, hidden 64, the same recipe as
every cell there: Adam, lr 1e-3, clipping by norm 1, at most 6000 steps of batch 50)
stays at the baseline at T = 200. This sweep runs the same model at T = 50 and 100,
and at T = 200 with the obvious changes one at a time: a smaller and a larger learning
rate, eigenvalues initialised on a ring closer to the unit circle (r_min 0.99,
r_max 0.9999: memory over ~10,000 steps), four blocks instead of two, and three
times the step budget (18,000: the steps to solve grow with T). Written into
--out: results.parquet/.csv and lru_adding.md (solved runs, median solve step or
median final loss, and the share of each block's eigenvalues with |lambda|^T > e^-2 in
the final model, per variant).

Run: ``.venv/bin/python benchmarks/lru_adding.py [--workers N]`` (about two hours of one
core). Resumable, like the other lab sweeps; the test suite runs it on a
tiny budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _sweep import adding_run, lru_modes_kept, median_shares, run_and_tabulate, sweep_parser
from rnngrad.lab.grid import Sweep
from rnngrad.lab.records import read_table_rows

# (label, sequence length, changes to the long-memory benchmark's LRU); T = 200 with
# no change is that benchmark's own cell (0/3 there).
VARIANTS: tuple[tuple[str, int, dict[str, Any]], ...] = (
    ("as in long_memory", 50, {}),
    ("as in long_memory", 100, {}),
    ("lr 3e-4", 200, {"lr": 3e-4}),
    ("lr 3e-3", 200, {"lr": 3e-3}),
    ("ring 0.99-0.9999", 200, {"r_min": 0.99, "r_max": 0.9999}),
    ("4 blocks", 200, {"layers": 4}),
    ("3x the steps", 200, {"steps_times": 3}),
)

_MATCHED = ("seq_len", "lr", "layers", "r_min", "r_max")


def build(seeds: int, steps: int, hidden: int, batch: int, lr: float) -> Sweep:
    configs = []
    for _, length, changes in VARIANTS:
        for seed in range(seeds):
            settings: dict[str, Any] = {"lr": lr, "layers": 2, **changes}
            settings["steps"] = steps * settings.pop("steps_times", 1)
            configs.append(adding_run(length, seed, hidden=hidden, batch=batch, cell="lru",
                                      **settings))  # fmt: skip
    return Sweep(("seq_len", "lr", "layers", "r_min", "r_max", "steps", "seed"), tuple(configs),
                 "benchmarks/lru_adding.py")  # fmt: skip


def report(out: Path, sweep: Sweep) -> str:
    rows = read_table_rows(out / "results.parquet", required=(*_MATCHED, "solved", "final_loss"))
    lines = ["| variant | T | solved | median solve step | median final loss "
             "| modes kept over T, per block |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    per_variant = len(sweep.configs) // len(VARIANTS)
    for index, (label, length, _) in enumerate(VARIANTS):
        configs = sweep.configs[index * per_variant : (index + 1) * per_variant]
        wanted = configs[0]
        match = [r for r in rows if all(r.get(k) == getattr(wanted, k) for k in _MATCHED)
                 and r.get("step_budget") == wanted.steps]  # fmt: skip
        if not match:
            lines.append(f"| {label} | {length} | — | — | — | — |")
            continue
        solved = sum(bool(r["solved"]) for r in match)
        steps = sorted(r["solved_at"] for r in match if r["solved"] and r.get("solved_at"))
        losses = sorted(r["final_loss"] for r in match if r["final_loss"] is not None)
        step = str(steps[len(steps) // 2]) if steps else "—"
        loss = f"{losses[len(losses) // 2]:.3g}" if losses else "diverged"
        kept = median_shares([lru_modes_kept(out / "runs" / c.key(), length) for c in configs])
        lines.append(
            f"| {label} | {length} | {solved}/{len(match)} | {step} | {loss} | {kept or '—'} |"
        )
    table = "\n".join(lines) + "\n"
    (out / "lru_adding.md").write_text(table)
    return table


def main(argv: list[str] | None = None) -> str:
    parser = sweep_parser(__doc__.splitlines()[0], out="benchmarks/results/lru_adding",
                          seeds=2, steps=6000, hidden=64, batch=50, lr=1e-3)  # fmt: skip
    args = parser.parse_args(argv)
    sweep = build(args.seeds, args.steps, args.hidden, args.batch, args.lr)
    return run_and_tabulate(sweep, args, lambda: report(args.out, sweep))


if __name__ == "__main__":
    main()
