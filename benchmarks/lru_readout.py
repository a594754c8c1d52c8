"""The lab's stacked LRU read at its last step: the top block at that step alone against
the top block over every step.

A model whose head reads only the last step (the adding problem, the classification
tasks) needs the top block's output at that step only. ``LabModel`` computes its LRU's
last state as one weighted sum by powers of lambda (``LRU.final_state``, no scan) and its
read-out, GELU and GLU at that step. This times one training step (forward, backward
and an Adam step; 2 residual blocks, hidden 64, batch 50, float32) both ways,
interleaved in one run, at T 1000 and 2000, at 1 thread and at torch's default thread
count, and prints the medians and their ratio (after checking that both give the same
prediction).

Run: ``.venv/bin/python benchmarks/lru_readout.py [--repeats N]``
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

from rnngrad.lab.models import LabModel


def every_step(model: LabModel, x: torch.Tensor) -> torch.Tensor:
    """The prediction with every block computed over all steps (the definition)."""
    assert model.encoder is not None
    u = model.encoder(x)
    for layer, norm, mixer in zip(model.lru_layers(), model.norms, model.mixers, strict=True):
        z = norm(u)
        u = u + nn.functional.glu(mixer(nn.functional.gelu(layer.read(layer(z), z))), dim=-1)
    prediction: torch.Tensor = model.head(u[-1])
    return prediction


def timed_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    target: torch.Tensor,
) -> float:
    """Seconds of one training step: forward, backward, the optimiser's step."""
    started = time.perf_counter()
    optimiser.zero_grad()
    loss = ((forward(x) - target) ** 2).mean()
    loss.backward()  # type: ignore[no-untyped-call]
    optimiser.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"2 blocks, hidden 64, batch 50, float32, {args.repeats} interleaved repetitions")
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for steps in (1000, 2000):
            torch.manual_seed(0)
            model = LabModel("lru", 2, 64, 1, per_step=False, layers=2)
            optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
            x, target = torch.randn(steps, 50, 2), torch.randn(50, 1)
            with torch.no_grad():
                gap = float((model(x) - every_step(model, x)).abs().max())
            assert gap < 1e-4, gap

            def full(v: torch.Tensor, model: LabModel = model) -> torch.Tensor:
                return every_step(model, v)

            for warm_up in (model, full):
                timed_step(warm_up, optimiser, x, target)
            last, whole = [], []
            for _ in range(args.repeats):  # interleaved: both see the same machine
                last.append(timed_step(model, optimiser, x, target))
                whole.append(timed_step(full, optimiser, x, target))
            a, b = statistics.median(last), statistics.median(whole)
            print(f"threads {threads}  T {steps}  last step {a:.3f} s  every step {b:.3f} s  "
                  f"speed-up {b / a:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
