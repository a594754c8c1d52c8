"""What the training monitor costs end to end: wall time with and without it.

A bidirectional 2-layer LSTM (hidden 128, T 200, batch 32; a linear head and a
classification loss on the last step) trains for 300 Adam steps, once with the
default :class:`rnngrad.GradientMonitor` (adaptive schedule, 5% budget; the loss
gets the labels through ``monitor.step(x, y)``) and once without, on the same
seed and data. The two are interleaved (their order alternates between repeats),
at 1 torch thread and at the default count, so that machine noise hits both
alike. Each line gives the median wall time of the plain and the monitored run,
the monitor's own measured share, and the overhead; the last line is
``median wall overhead = X%`` (the larger of the two thread settings). Goal: X <= 5.

Run: ``.venv/bin/python benchmarks/monitor_overhead.py [--steps N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import torch
from torch import nn

from rnngrad import GradientMonitor
from rnngrad.monitor import GradientWarning


class Classifier(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(16, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def run(monitored: bool, steps: int, hidden: int, length: int, batch: int) -> tuple[float, float]:
    """Wall seconds of the training loop, and the monitor's own seconds."""
    torch.manual_seed(0)
    model = Classifier(hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    data = [
        (torch.randn(batch, length, 16, generator=generator),
         torch.randint(0, 10, (batch,), generator=generator))
        for _ in range(8)
    ]  # fmt: skip
    loss_fn = nn.functional.cross_entropy
    monitor = GradientMonitor(model, loss=loss_fn) if monitored else None
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        for step in range(steps):
            x, y = data[step % len(data)]
            loss = loss_fn(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if monitor is not None:
                monitor.step(x, y)
    wall = time.perf_counter() - started
    return wall, (monitor.profile_seconds if monitor is not None else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"bidirectional 2-layer LSTM, hidden {args.hidden}, T {args.length}, "
          f"batch {args.batch}, {args.steps} steps, {args.repeats} repeats")  # fmt: skip
    overheads = []
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        run(False, 5, args.hidden, args.length, args.batch)  # warm the allocator and kernels
        plain, monitored, own = [], [], []
        for repeat in range(args.repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for with_monitor in order:
                wall, spent = run(with_monitor, args.steps, args.hidden, args.length, args.batch)
                (monitored if with_monitor else plain).append(wall)
                if with_monitor:
                    own.append(spent / wall)
        overhead = statistics.median(monitored) / statistics.median(plain) - 1.0
        overheads.append(overhead)
        print(f"{threads} thread(s): plain {statistics.median(plain):.2f} s, monitored "
              f"{statistics.median(monitored):.2f} s, monitor's own share "
              f"{statistics.median(own):.1%}, wall overhead {overhead:.1%}")  # fmt: skip
    print(f"median wall overhead = {100 * max(overheads):.1f}%")


if __name__ == "__main__":
    main()
