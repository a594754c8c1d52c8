"""The curse of memory on the LRU (Zucchet & Orvieto 2024), at initialisation: how the
states' sensitivity to the recurrence's own parameters grows as the ring of eigenvalues
moves towards the unit circle, and how the LRU's input normalisation
``gamma = sqrt(1 - |lambda|^2)`` and its exponential parameterisation
``|lambda| = exp(-exp(nu))`` tame it.

For each radius ``r`` (a narrow ring ``[r, r + 0.005]``, so that ``|lambda|`` is nearly
one number), hidden 64, white N(0, 1) inputs of T = 300 steps, 16 sequences, it measures
with :func:`rnngrad.memory_sensitivity` (exact for these per-mode parameters):

- ``||h_T||``, and ``||dh_T/d nu||`` with the LRU's normalisation (its own ``gamma``);
- the same without it (``gamma = 1``);
- ``||dh_T/d|lambda|||`` = ``||dh_T/d nu|| / |d|lambda|/d nu|`` (``|d|lambda|/d nu| =
  |lambda| exp(nu) = |lambda| |ln|lambda||``, one number on the narrow ring): what a
  direct parameterisation of ``|lambda|`` would see.

The closed form for one real mode ``h_t = lambda h_{t-1} + x_t`` with unit white inputs
predicts ``E(dh/dlambda)^2 = (1 + lambda^2) / (1 - lambda^2)^3`` (stationary): the last
column gives its root, the shape the unnormalised, directly parameterised column should
follow (its scale differs: 64 complex modes, each fed ``B x``); near ``r = 1`` the
300 steps no longer reach the stationary value (``1 / (1 - r)`` is 200 steps at 0.995).

Run: ``.venv/bin/python benchmarks/curse_of_memory.py``; writes
``benchmarks/results/curse_of_memory.md``. About two minutes on two cores.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path

import torch

from rnngrad import memory_sensitivity
from rnngrad.modern import LRU

RADII = (0.36, 0.5, 0.7, 0.9, 0.95, 0.99, 0.995)
STEPS, HIDDEN, SEQUENCES = 300, 64, 16
OUT = Path(__file__).resolve().parent / "results" / "curse_of_memory.md"


def measure(radius: float) -> tuple[float, float, float, float]:
    """``||h_T||``, ``||dh_T/dnu||`` normalised and not, and ``||dh_T/d|lambda|||``."""
    generator = torch.Generator().manual_seed(0)
    lru = LRU(1, HIDDEN, r_min=radius, r_max=min(radius + 0.005, 0.9999),
              generator=generator).double()  # fmt: skip
    x = torch.randn(STEPS, SEQUENCES, 1, dtype=torch.float64, generator=generator)
    normalised = memory_sensitivity(lru, x, loss="sum")
    state = float(normalised.state_norm[:, -1].mean())
    with_gamma = float(normalised.parameter("nu_log").state_norm[:, -1].mean())
    with torch.no_grad():
        lru.gamma_log.zero_()  # gamma = 1: no normalisation
    plain = memory_sensitivity(lru, x, loss="sum")
    without_gamma = float(plain.parameter("nu_log").state_norm[:, -1].mean())
    moduli = lru.eigenvalues().detach().abs()
    factor = float((moduli * -torch.log(moduli)).mean())  # |d|lambda|/dnu| on the ring
    return state, with_gamma, without_gamma, without_gamma / factor


def main() -> str:
    lines = [
        f"machine: {platform.machine()}, torch {torch.__version__}; LRU hidden {HIDDEN}, "
        f"T = {STEPS}, {SEQUENCES} sequences of white N(0, 1) inputs, at initialisation",
        "",
        "| ring radius | ‖h_T‖ | ‖dh_T/dν‖, normalised | ‖dh_T/dν‖, γ = 1 "
        "| ‖dh_T/dρ‖ (ρ = modulus of λ), γ = 1 | one mode's closed form ((1+r²)/(1-r²)³)^½ |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for radius in RADII:
        state, normalised, plain, direct = measure(radius)
        closed = math.sqrt((1 + radius**2) / (1 - radius**2) ** 3)
        lines.append(f"| {radius} | {state:.3g} | {normalised:.3g} | {plain:.3g} | "
                     f"{direct:.3g} | {closed:.3g} |")  # fmt: skip
    table = "\n".join(lines)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table + "\n")
    print(table)
    return table


if __name__ == "__main__":
    main()
