"""What the LRU step benchmarks share (lru_readout.py, lru_views.py): one timed training
step, and the lab's two-block LRU set up at each thread count and length they compare."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from rnngrad.lab.models import LabModel

__all__ = ["Setup", "compare", "setups", "timed_step"]


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


@dataclass
class Setup:
    """The lab's two-block LRU (hidden 64), its optimiser and one batch of 50."""

    threads: int
    steps: int
    model: LabModel
    optimiser: torch.optim.Optimizer
    x: torch.Tensor
    target: torch.Tensor


def setups(repeats: int) -> Iterator[Setup]:
    """Print the machine and the settings; then, at 1 thread and at torch's default
    thread count, at T 1000 and 2000, a freshly seeded model and batch."""
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"2 blocks, hidden 64, batch 50, float32, {repeats} interleaved repetitions")
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for steps in (1000, 2000):
            torch.manual_seed(0)
            model = LabModel("lru", 2, 64, 1, per_step=False, layers=2)
            optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
            yield Setup(threads, steps, model, optimiser, torch.randn(steps, 50, 2),
                        torch.randn(50, 1))  # fmt: skip


def compare(
    setup: Setup,
    repeats: int,
    new: Callable[[torch.Tensor], torch.Tensor],
    old: Callable[[torch.Tensor], torch.Tensor],
    names: tuple[str, str],
) -> None:
    """Check that ``new`` and ``old`` give the same prediction, then time a training step
    of each, interleaved ``repeats`` times after one warm-up each, and print the medians
    and ``old / new``."""
    with torch.no_grad():
        gap = float((new(setup.x) - old(setup.x)).abs().max())
    assert gap < 1e-4, gap
    arguments = (setup.optimiser, setup.x, setup.target)
    timed_step(new, *arguments)
    timed_step(old, *arguments)
    fast, slow = [], []
    for _ in range(repeats):  # interleaved: both see the same machine
        fast.append(timed_step(new, *arguments))
        slow.append(timed_step(old, *arguments))
    a, b = statistics.median(fast), statistics.median(slow)
    print(f"threads {setup.threads}  T {setup.steps}  {names[0]} {a:.3f} s  "
          f"{names[1]} {b:.3f} s  speed-up {b / a:.2f}x")  # fmt: skip
