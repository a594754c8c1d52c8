"""Training speed of the modern cells: the parallel scan against their own sequential loop.

For ``lru``, ``mingru``, ``minlstm`` and ``indrnn`` (T 1000, batch 32, hidden 64,
float32) it times, interleaved in one run, one training step's forward and backward
through

- scan: the layer's ``forward`` (the parallel scan of :mod:`rnngrad.modern.scan`; for
  IndRNN, whose recurrence is nonlinear, a forward loop outside autograd and a scanned
  backward);
- loop: the same layer's ``step`` called ``T`` times (its definition, as one would write it);

at 1 thread and at torch's default thread count, and prints the medians and ratios; the
last line is ``min scan speed-up = R`` over the three linear recurrences (IndRNN, whose
forward stays a loop, is printed beside them). Goal: R >= 3 on a CPU.

With ``--device cuda`` the same steps run on the GPU (the CPU's thread count does not
matter there, so one pass at the default; each repetition ends with a synchronisation).

Run: ``.venv/bin/python benchmarks/scan_speed.py [--repeats N] [--device cuda]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from rnngrad.devices import resolve_device
from rnngrad.modern import LRU, IndRNN, MinGRU, MinLSTM


def timed(work: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}")
    print(f"T {args.steps}, batch 32, hidden 64, float32, {args.repeats} interleaved repetitions")
    speedups = []
    thread_counts = [default_threads] if device.type == "cuda" else sorted({1, default_threads})
    for threads in thread_counts:
        torch.set_num_threads(threads)
        cells: list[tuple[str, Callable[[], torch.nn.Module]]] = [
            ("lru", lambda: LRU(64, 64)),
            ("mingru", lambda: MinGRU(64, 64)),
            ("minlstm", lambda: MinLSTM(64, 64)),
            ("indrnn", lambda: IndRNN(64, 64, max_length=args.steps)),
        ]
        for name, make in cells:
            torch.manual_seed(0)
            layer = make().to(device)
            x = torch.randn(args.steps, 32, 64).to(device)

            def scan(layer: torch.nn.Module = layer, x: torch.Tensor = x) -> None:
                layer(x).real.sum().backward()

            def loop(layer: torch.nn.Module = layer, x: torch.Tensor = x) -> None:
                h = layer.initial_state(x.shape[1], x)
                total = torch.zeros((), device=x.device)
                for t in range(x.shape[0]):
                    h = layer.step(x[t], h)
                    total = total + h.real.sum()
                total.backward()

            scan()  # warm up
            loop()
            times: dict[str, list[float]] = {"scan": [], "loop": []}
            for _ in range(args.repeats):
                times["scan"].append(timed(scan, device))
                times["loop"].append(timed(loop, device))
            fast, slow = statistics.median(times["scan"]), statistics.median(times["loop"])
            if name != "indrnn":
                speedups.append(slow / fast)
            print(f"threads {threads}  {name:8s} scan {fast:.4f} s  loop {slow:.4f} s  "
                  f"speed-up {slow / fast:.1f}x")  # fmt: skip
    print(f"min scan speed-up = {min(speedups):.1f}")


if __name__ == "__main__":
    main()
