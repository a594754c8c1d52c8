"""Speed of a full Lyapunov spectrum of a random rate network, N = 1024 by default.

``x_{t+1} = (1 - delta) x_t + delta W tanh(x_t)``, ``W_ij ~ N(0, g^2/N)`` (g = 2,
delta = 0.5), no input: the full spectrum (k = N) by
:func:`rnngrad.lyapunov.spectrum.lyapunov_spectrum` over ``--steps`` measured steps
after ``--warmup``, one trajectory, float64, with a QR factorisation after every step
(``reorth=1``, as the published code for these networks does) and with rnngrad's
default (``reorth="auto"``: only as often as rounding requires). Each setting runs
``--repeats`` times at 1 thread and at the default thread count, interleaved; the lines
give the median wall seconds, the seconds per step, and the same scaled to 2000 steps,
beside the mean-field lambda_1 and the measured one.

A published point of reference: D. G. Clark's code ("Lyapunov spectrum of random neural
networks") computes N = 4096, 2000 steps, QR every step, in about 208 s on one GPU;
the work per step grows as N^3 (the Jacobian applied to N vectors and the QR), so
N = 4096 is 64 times the work of N = 1024.

Run: ``.venv/bin/python benchmarks/rate_spectrum.py [--size N] [--steps T] [--repeats R]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from rnngrad.lyapunov.spectrum import lyapunov_spectrum
from rnngrad.rate import random_rate_network
from rnngrad.theory.leaky_meanfield import leaky_mean_field_lambda1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--gain", type=float, default=2.0)
    parser.add_argument("--delta", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    network = random_rate_network(args.size, args.gain, args.delta, seed=0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"N = {args.size}, g = {args.gain:g}, delta = {args.delta:g}, {args.steps} steps "
          f"after {args.warmup}, full spectrum, float64, {args.repeats} repeats")  # fmt: skip
    times: dict[tuple[int, str], list[float]] = {}
    lambda1 = {}
    for _ in range(args.repeats):
        for threads in sorted({1, default_threads}):
            torch.set_num_threads(threads)
            for reorth in (1, "auto"):
                started = time.perf_counter()
                result = lyapunov_spectrum(network, steps=args.steps, warmup=args.warmup,
                                           batch=1, reorth=reorth, progress=False)  # type: ignore[arg-type]  # fmt: skip
                times.setdefault((threads, str(reorth)), []).append(time.perf_counter() - started)
                lambda1[str(reorth)] = float(result.exponents[0])
    for (threads, reorth), values in sorted(times.items()):
        median = statistics.median(values)
        per_step = median / args.steps  # the warm-up runs the state alone: little
        print(f"{threads} thread(s), reorth {reorth}: {median:.1f} s, {per_step * 1e3:.1f} ms "
              f"per step, {per_step * 2000:.0f} s for 2000 steps")  # fmt: skip
    theory = leaky_mean_field_lambda1(args.gain, args.delta).lambda1
    print(f"lambda_1 measured {lambda1['auto']:.4f} (reorth auto), {lambda1['1']:.4f} (every "
          f"step); mean field {theory:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
