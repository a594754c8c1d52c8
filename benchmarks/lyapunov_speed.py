"""Speed of the full Lyapunov spectrum against its floor and against the naive route.

Full spectrum (k = state size), T = 2000 steps, float64, QR after every step,
one trajectory, for an Elman tanh network (n = 256) and an LSTM (n = 128,
state 256), timed interleaved in one run:

- ours: :func:`rnngrad.lyapunov.lyapunov_spectrum` (analytic Jacobian-vector
  products on the basis, no n x n Jacobian per step);
- floor: the bare work of the method at the same sizes, T times a matrix
  product of the recurrent weights with the basis and a QR factorisation;
- naive: what a user would write, ``torch.func.jacrev`` of one step, then
  ``J @ Q`` and a QR.

Prints medians and ratios; the last line is ``max ratio to floor = R``
(goal: R <= 1.3 for Elman, <= 1.5 for LSTM). Memory of ours is O(n k).

Run: ``.venv/bin/python benchmarks/lyapunov_speed.py [--steps T] [--repeats N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import jacrev

from rnngrad.dynamics import ModuleDynamics
from rnngrad.lyapunov import lyapunov_spectrum


def floor(weights: torch.Tensor, basis_rows: int, state: int, steps: int) -> None:
    """T times: (weights @ part of the basis) and a QR of the (state x state) basis."""
    basis = torch.linalg.qr(torch.randn(state, state, dtype=torch.float64))[0]
    for _ in range(steps):
        product = weights @ basis[:basis_rows]
        basis[: product.shape[0]] = product[: basis.shape[0]]
        basis, _ = torch.linalg.qr(basis)


def naive(module: nn.Module, steps: int) -> None:
    dynamics = ModuleDynamics(module)
    state = dynamics.initial_state(1, torch.Generator().manual_seed(0))
    x = torch.zeros(1, dynamics.input_size, dtype=torch.float64)
    basis = torch.linalg.qr(
        torch.randn(dynamics.state_size, dynamics.state_size, dtype=torch.float64)
    )[0]
    total = torch.zeros(dynamics.state_size, dtype=torch.float64)

    def step(s: torch.Tensor) -> torch.Tensor:
        return dynamics.step(s.unsqueeze(0), x)[0].squeeze(0)

    for _ in range(steps):
        jacobian = jacrev(step)(state.squeeze(0))
        state = step(state.squeeze(0)).unsqueeze(0)
        basis, triangle = torch.linalg.qr(jacobian @ basis)
        total += torch.log(torch.diagonal(triangle).abs())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--naive-steps", type=int, default=200, help="naive is timed on fewer steps and scaled"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    print(
        f"T = {args.steps}, float64, full spectrum, QR every step, {args.repeats} interleaved "
        "repetitions, medians (naive timed on --naive-steps steps and scaled to T)"
    )
    with torch.no_grad():
        elman = nn.RNN(1, 256, bias=False).double()
        elman.weight_hh_l0.copy_(torch.randn(256, 256, dtype=torch.float64) * 1.5 / 16)
        lstm = nn.LSTM(1, 128).double()
    cases = {
        "Elman n=256": (elman, elman.weight_hh_l0.detach(), 256, 256),
        "LSTM n=128 (state 256)": (lstm, lstm.weight_hh_l0.detach(), 128, 256),
    }
    worst = {}
    for name, (module, weights, rows, state) in cases.items():
        runs: dict[str, Callable[[], None]] = {
            "ours": lambda module=module: lyapunov_spectrum(
                module, steps=args.steps, warmup=0, batch=1, reorth=1, progress=False
            ),
            "floor": lambda w=weights, r=rows, s=state: floor(w, r, s, args.steps),
        }
        times: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(args.repeats):
            for key, function in runs.items():
                start = time.perf_counter()
                function()
                times[key].append(time.perf_counter() - start)
        start = time.perf_counter()
        naive(module, args.naive_steps)
        naive_time = (time.perf_counter() - start) * args.steps / args.naive_steps
        ours = statistics.median(times["ours"])
        bare = statistics.median(times["floor"])
        worst[name] = ours / bare
        print(
            f"{name:24s} ours {ours:7.3f} s  floor {bare:7.3f} s  naive {naive_time:7.3f} s  "
            f"ours/floor {ours / bare:.2f}  naive/ours {naive_time / ours:.1f}"
        )
    print(f"max ratio to floor = {max(worst.values()):.2f}")


if __name__ == "__main__":
    main()
