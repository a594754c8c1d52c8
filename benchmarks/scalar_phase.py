"""Speed of the scalar phase diagram: log10|dy/dh_1| over a 1000 x 1000 (a, T) grid.

Goal (foundation issue): well under a second on 2 CPU cores.

Compared in the same run with the straightforward route, one
``scalar_chain_rule`` call per ``a`` value over the longest ``T`` and reading
``log10|dy/dh_1|`` for each shorter ``T`` from its own run (a user's loop).
Prints medians over repetitions and their ratio; the last line is the median
time of the vectorised call.

Run: ``.venv/bin/python benchmarks/scalar_phase.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from rnngrad import scalar_chain_rule, scalar_phase_diagram


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cells", type=int, default=1000, help="grid side (a values = T values)")
    args = parser.parse_args()
    side = args.cells
    a_values = np.linspace(-2.0, 2.0, side)
    lengths = np.arange(1, side + 1)
    x = np.random.default_rng(0).standard_normal(side)

    def vectorised() -> object:
        return scalar_phase_diagram(a_values, lengths, x=x)

    def per_a_loop() -> object:
        grid = np.empty((side, side))
        for i, a in enumerate(a_values):
            # dy/dh_1 for the prefix of length T: d * prod_{t=2..T}; the full run gives the
            # factors, and their prefix sums give every T (already a smart user).
            run = scalar_chain_rule(x, a=a)
            grid[i] = np.concatenate([[0.0], np.cumsum(run.log10_abs_factors)])
        return grid

    # Same numbers both ways (a check, not a timing).
    reference = per_a_loop()
    ours = scalar_phase_diagram(a_values, lengths, x=x).log10_abs_grad
    assert np.allclose(ours, reference, rtol=1e-10, atol=1e-10)

    t_vec = median_seconds(vectorised, args.repeats)
    t_loop = median_seconds(per_a_loop, max(1, args.repeats // 3))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(f"grid: {side} a values x {side} lengths T = 1..{side}, tanh, N(0,1) inputs")
    print(f"per-a loop of scalar_chain_rule   median {t_loop:8.4f} s")
    print(f"scalar_phase_diagram (vectorised) median {t_vec:8.4f} s")
    print(f"speed-up = {t_loop / t_vec:.1f}x")
    print(f"phase diagram median = {t_vec:.4f} s")


if __name__ == "__main__":
    main()
