"""How a sweep scales with workers: serial runs against a Dask LocalCluster of 1..N.

A fixed grid of short training runs (adding problem, T 100, tanh RNN and LSTM,
hidden 64, 800 steps of batch 32, eight seeds each: 16 runs of 2 to 7 s) runs first serially
in this process (one thread, one run after another), then through
:func:`rnngrad.lab.sweep.run_sweep` on a ``LocalCluster`` of 1, 2, ... up to
the machine's cores, each into a fresh folder, each worker pinned to one torch
thread. Wall time counts everything a user waits for, the cluster's start and
close included. For N workers the parallel efficiency is
``E = serial / (N * wall_N)``, with the serial time measured before and after the
Dask runs and averaged (the machine's speed drifts); the last line is
``parallel efficiency at N workers = E`` for the largest N (goal E >= 0.8).
Where the time goes is printed too: the bare start and close of a cluster of
that size, and the sum of the runs' own training time inside the workers.

Run: ``.venv/bin/python benchmarks/sweep_scaling.py [--steps N] [--workers N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from rnngrad.lab.config import TrainConfig
from rnngrad.lab.grid import Sweep
from rnngrad.lab.sweep import _run_cell, run_sweep


def grid(steps: int, hidden: int) -> Sweep:
    configs = tuple(
        TrainConfig(
            task="adding", seq_len=100, cell=cell, hidden=hidden, steps=steps, batch=32,
            lr=1e-3, seed=seed, eval_every=100, eval_batch=500, checkpoint_every=200,
            profile_every=10_000,
        )
        for cell in ("rnn", "lstm")
        for seed in range(8)
    )  # fmt: skip
    return Sweep(("cell", "seed"), configs, "benchmarks/sweep_scaling.py")


def cluster_start_and_close(workers: int) -> float:
    from dask.distributed import Client, LocalCluster

    from rnngrad.lab.sweep import _without_trim_threshold

    started = time.perf_counter()
    with _without_trim_threshold():  # as run_sweep starts its clusters
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(cluster)
    client.close()
    cluster.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sweep = grid(args.steps, args.hidden)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"{len(sweep.configs)} runs (adding T 100, rnn and lstm, hidden {args.hidden}, "
          f"{args.steps} steps of batch 32), one torch thread per run")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        torch.set_num_threads(1)

        def serial(name: str) -> float:
            started = time.perf_counter()
            for index, config in enumerate(sweep.configs):
                _run_cell(asdict(config), str(Path(scratch) / name / str(index)))
            return time.perf_counter() - started

        # The serial baseline is measured before and after the Dask runs and averaged:
        # the shared machine's speed drifts by several per cent over minutes.
        before = serial("serial-before")
        print(f"serial, in this process, before: {before:.1f} s")
        walls: dict[int, tuple[float, float, float]] = {}
        for workers in range(args.workers, 0, -1):
            started = time.perf_counter()
            results = run_sweep(
                sweep, Path(scratch) / f"dask{workers}", workers=workers, use_dask=True,
                progress=False,
            )  # fmt: skip
            wall = time.perf_counter() - started
            inside = sum(float(r.get("wall_s") or 0.0) for r in results)
            walls[workers] = (wall, inside, cluster_start_and_close(workers))
        after = serial("serial-after")
        print(f"serial, in this process, after: {after:.1f} s")
        baseline = (before + after) / 2
        largest = 0.0
        for workers, (wall, inside, bare) in walls.items():
            efficiency = baseline / (workers * wall)
            if workers == args.workers:
                largest = efficiency
            print(f"Dask, {workers} worker(s): {wall:.1f} s, efficiency {efficiency:.2f}; "
                  f"training inside the workers {inside:.1f} s, a bare cluster's start and "
                  f"close {bare:.1f} s")  # fmt: skip
    print(f"parallel efficiency at {args.workers} workers = {largest:.2f}")


if __name__ == "__main__":
    main()
