"""What the training monitor costs end to end: wall time with and without it.

A bidirectional 2-layer LSTM (hidden 128, T 200, batch 32; a linear head and a
classification loss on the last step) trains for 300 Adam steps twice from the
same seed and data: once with the default :class:`rnngrad.GradientMonitor`
(adaptive schedule, 5% budget; the loss gets the labels through
``monitor.step(x, y)``) and once without. On a shared machine the speed of the
processor drifts by up to 15% between two consecutive 30-second runs (measured
here), more than the effect to be measured, so the two trainings run in one
process in alternating segments of ``--segment`` steps (plain first in even
repeats, monitored first in odd ones): both see the same machine at the same
time. The monitor's clock counts only its own training's time (its schedule is
not fooled by the other run's segments). Each thread setting (1 and the
default) prints the wall time of each training, the monitor's own share and
the overhead, monitored / plain - 1, as the median over ``--repeats``; the last
line is ``median wall overhead = X%`` (the larger of the two settings).
Goal: X <= 5.

Run: ``.venv/bin/python benchmarks/monitor_overhead.py [--steps N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from rnngrad import GradientMonitor
from rnngrad.monitor.monitor import GradientWarning


class Classifier(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(16, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class OwnClock:
    """``time.perf_counter`` less the time spent outside this training's segments."""

    def __init__(self) -> None:
        self.excluded = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self.excluded


class Training:
    """One training run, advanced a segment at a time."""

    def __init__(self, monitored: bool, hidden: int, length: int, batch: int) -> None:
        torch.manual_seed(0)
        self.model = Classifier(hidden)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(1)
        self.data = [
            (torch.randn(batch, length, 16, generator=generator),
             torch.randint(0, 10, (batch,), generator=generator))
            for _ in range(8)
        ]  # fmt: skip
        self.loss: Callable[..., torch.Tensor] = nn.functional.cross_entropy
        self.clock = OwnClock()
        self.monitor = (
            GradientMonitor(self.model, loss=self.loss, clock=self.clock) if monitored else None
        )
        self.step = 0
        self.seconds = 0.0
        self.left_at: float | None = None

    def segment(self, steps: int) -> None:
        entered = time.perf_counter()
        if self.left_at is not None:
            self.clock.excluded += entered - self.left_at
        for _ in range(steps):
            x, y = self.data[self.step % len(self.data)]
            loss = self.loss(self.model(x), y)
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            if self.monitor is not None:
                self.monitor.step(x, y)
            self.step += 1
        self.left_at = time.perf_counter()
        self.seconds += self.left_at - entered


def compare(
    steps: int, segment: int, plain_first: bool, sizes: tuple[int, int, int]
) -> tuple[float, float, float]:
    """Wall seconds of the plain and the monitored training, and the monitor's own."""
    plain, monitored = Training(False, *sizes), Training(True, *sizes)
    order = (plain, monitored) if plain_first else (monitored, plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        for start in range(0, steps, segment):
            for training in order:
                training.segment(min(segment, steps - start))
    assert monitored.monitor is not None
    return plain.seconds, monitored.seconds, monitored.monitor.profile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--segment", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    sizes = (args.hidden, args.length, args.batch)
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"bidirectional 2-layer LSTM, hidden {args.hidden}, T {args.length}, "
          f"batch {args.batch}, {args.steps} steps in segments of {args.segment}, "
          f"{args.repeats} repeats")  # fmt: skip
    overheads = []
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        compare(5, 5, True, sizes)  # warm the allocator and kernels
        plain, monitored, own, ratios = [], [], [], []
        for repeat in range(args.repeats):
            seconds = compare(args.steps, args.segment, repeat % 2 == 0, sizes)
            plain.append(seconds[0])
            monitored.append(seconds[1])
            own.append(seconds[2] / (seconds[1] - seconds[2]))
            ratios.append(seconds[1] / seconds[0] - 1.0)
        overhead = statistics.median(ratios)
        overheads.append(overhead)
        print(f"{threads} thread(s): plain {statistics.median(plain):.2f} s, monitored "
              f"{statistics.median(monitored):.2f} s, monitor's own share "
              f"{statistics.median(own):.1%} of training, wall overhead {overhead:.1%} "
              f"(repeats: {', '.join(f'{r:.1%}' for r in ratios)})")  # fmt: skip
    print(f"median wall overhead = {100 * max(overheads):.1f}%")


if __name__ == "__main__":
    main()
