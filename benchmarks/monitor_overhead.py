"""What the training monitor costs end to end: wall time with and without it.

Two models, each trained for 300 Adam steps twice from the same seed and data: once
with the default :class:`rnngrad.GradientMonitor` (adaptive schedule, 5% budget, the
first profile included; the classifier's loss gets the targets through
``monitor.step(x, y)``, the seq2seq model's encoder and decoder are profiled through
``monitor.step_call(fn)``, ``fn`` its forward and loss;
records written to a TensorBoard ``SummaryWriter``, heat map included, unless
``--no-writer``) and once without. ``classifier``: a bidirectional 2-layer LSTM
(hidden 128, T 200, batch 32; a linear head and a classification loss on the last
step). ``seq2seq``: a GRU encoder over the past (T 200) and a GRU decoder from its
state over the next 50 steps, an MSE loss on every decoded step, as forecasters train.
On a shared machine the speed of the processor drifts by up to 15% between two
consecutive 30-second runs (measured here), more than the effect to be measured, so
the two trainings run in one process in alternating segments of ``--segment``
steps (plain first in even repeats, monitored first in odd ones): both see the same
machine at the same time. The monitor's clock counts only its own training's time (its schedule is
not fooled by the other run's segments). Each model and thread setting (1 and the
default) prints the wall time of each training, the monitor's own share and
the overhead, monitored / plain - 1, as the median over ``--repeats``; the last
line is ``median wall overhead = X%`` (the largest of them).
Goal: X <= 5.

``--sensitivity`` monitors with ``GradientMonitor(sensitivity=True)`` (the curse of
memory at each profile: per parameter of the recurrence ``||dh_T/dtheta||``, Hutchinson's
estimate with 4 directions for the LSTM's dense weights, and ``||dL/dtheta||``): the
classifier only, whose model has one recurrent module for it to measure. Its cost
counts in the same 5% budget, so the schedule takes fewer profiles.

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


class Seq2Seq(nn.Module):
    """An encoder GRU and a decoder GRU from its state, read at every decoded step."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.GRU(16, hidden, batch_first=True)
        self.decoder = nn.GRU(4, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(past)
        out, _ = self.decoder(future, state)
        return self.head(out)  # type: ignore[no-any-return]


def per_step_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((output - target) ** 2).mean()


class OwnClock:
    """``time.perf_counter`` less the time spent outside this training's segments."""

    def __init__(self) -> None:
        self.excluded = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self.excluded


class Training:
    """One training run, advanced a segment at a time."""

    def __init__(
        self,
        monitored: bool,
        kind: str,
        hidden: int,
        length: int,
        batch: int,
        writer: bool,
        sensitivity: bool = False,
    ) -> None:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(1)
        self.model: nn.Module
        if kind == "classifier":
            self.model = Classifier(hidden)
            self.loss: Callable[..., torch.Tensor] = nn.functional.cross_entropy
            self.data = [
                ((torch.randn(batch, length, 16, generator=generator),),
                 torch.randint(0, 10, (batch,), generator=generator))
                for _ in range(8)
            ]  # fmt: skip
        else:
            self.model = Seq2Seq(hidden)
            self.loss = per_step_mse
            horizon = 50
            self.data = [
                ((torch.randn(batch, length, 16, generator=generator),
                  torch.randn(batch, horizon, 4, generator=generator)),
                 torch.randn(batch, horizon, 1, generator=generator))
                for _ in range(8)
            ]  # fmt: skip
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.clock = OwnClock()
        self.writer = None
        if monitored and writer:
            import tempfile

            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=tempfile.mkdtemp(prefix="monitor-overhead-"))
        self.monitor = (
            GradientMonitor(
                self.model,
                loss=self.loss,
                clock=self.clock,
                writer=self.writer,
                sensitivity=sensitivity,
            )
            if monitored
            else None
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
            loss = self.loss(self.model(*x), y)
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            if self.monitor is not None and len(x) == 1:
                self.monitor.step(x[0], y)
            elif self.monitor is not None:  # two recurrent modules: every one the step calls
                self.monitor.step_call(lambda x=x, y=y: self.loss(self.model(*x), y))
            self.step += 1
        self.left_at = time.perf_counter()
        self.seconds += self.left_at - entered


def compare(
    steps: int, segment: int, plain_first: bool, kind: str, sizes: tuple[int, int, int],
    writer: bool, sensitivity: bool = False,
) -> tuple[float, float, float, int, int]:  # fmt: skip
    """Wall seconds of the plain and the monitored training, the monitor's own, the
    profiles it took, and how many of them measured the curse of memory."""
    plain = Training(False, kind, *sizes, writer)
    monitored = Training(True, kind, *sizes, writer, sensitivity)
    order = (plain, monitored) if plain_first else (monitored, plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        for start in range(0, steps, segment):
            for training in order:
                training.segment(min(segment, steps - start))
    assert monitored.monitor is not None
    if monitored.writer is not None:
        monitored.writer.close()
    monitor = monitored.monitor
    measured = sum(1 for record in monitor.history if record.parameters)
    return plain.seconds, monitored.seconds, monitor.profile_seconds, len(monitor.history), measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--segment", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--models", default=None, help="default: classifier,seq2seq")
    parser.add_argument("--no-writer", action="store_true", help="no TensorBoard writer")
    parser.add_argument("--sensitivity", action="store_true",
                        help="the monitor also measures the curse of memory")  # fmt: skip
    args = parser.parse_args()
    models = args.models or ("classifier" if args.sensitivity else "classifier,seq2seq")
    if args.sensitivity and "seq2seq" in models.split(","):
        parser.error("--sensitivity measures one recurrent module: the classifier only")
    sizes = (args.hidden, args.length, args.batch)
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"hidden {args.hidden}, T {args.length}, batch {args.batch}, {args.steps} steps in "
          f"segments of {args.segment}, {args.repeats} repeats, "
          f"{'no writer' if args.no_writer else 'TensorBoard writer'}"
          f"{', sensitivity' if args.sensitivity else ''}")  # fmt: skip
    overheads = []
    for kind in models.split(","):
        for threads in sorted({1, default_threads}):
            torch.set_num_threads(threads)
            # warm kernels, imports
            compare(5, 5, True, kind, sizes, not args.no_writer, args.sensitivity)
            plain, monitored, own, ratios, taken, sensed = [], [], [], [], [], []
            for repeat in range(args.repeats):
                seconds = compare(
                    args.steps,
                    args.segment,
                    repeat % 2 == 0,
                    kind,
                    sizes,
                    not args.no_writer,
                    args.sensitivity,
                )
                plain.append(seconds[0])
                monitored.append(seconds[1])
                own.append(seconds[2] / (seconds[1] - seconds[2]))
                ratios.append(seconds[1] / seconds[0] - 1.0)
                taken.append(seconds[3])
                sensed.append(seconds[4])
            overhead = statistics.median(ratios)
            overheads.append(overhead)
            curse = f" ({statistics.median(sensed)} with the curse of memory)"
            print(f"{kind}, {threads} thread(s): plain {statistics.median(plain):.2f} s, "
                  f"monitored {statistics.median(monitored):.2f} s, "
                  f"{statistics.median(taken)} profiles"
                  f"{curse if args.sensitivity else ''}"
                  f", monitor's own share "
                  f"{statistics.median(own):.1%} of training, wall overhead {overhead:.1%} "
                  f"(repeats: {', '.join(f'{r:.1%}' for r in ratios)})")  # fmt: skip
    print(f"median wall overhead = {100 * max(overheads):.1f}%")


if __name__ == "__main__":
    main()
