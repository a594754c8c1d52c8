"""Overhead of the per-time-step gradient profile against a plain forward+backward.

For nn.RNN, nn.LSTM and nn.GRU (hidden 256, T 1000, batch 32, float32 by
default) it times, interleaved in one run so that machine noise hits all alike:

- plain: the fused module's forward and ``loss.backward()`` (what training does);
- profile: :func:`rnngrad.gradient_profile`, every layer's ``dL/dh_t`` for all t;
- naive: the cell-by-cell loop with ``retain_grad`` that users otherwise write,
  run on the same parameters (``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``).

It prints medians and the ratios to plain; the last line is
``max profile/plain ratio = R``. Goal: R <= 1.3.

Run: ``.venv/bin/python benchmarks/profile_overhead.py [--device cuda] [--repeats N]``
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

from rnngrad import gradient_profile


def naive_profile(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The cell loop with retain_grad: the reference a user writes by hand."""
    if isinstance(module, nn.LSTM):
        cell: nn.Module = nn.LSTMCell(module.input_size, module.hidden_size)
    elif isinstance(module, nn.GRU):
        cell = nn.GRUCell(module.input_size, module.hidden_size)
    else:
        cell = nn.RNNCell(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity)
    cell = cell.to(x.device, x.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(module.weight_ih_l0)
        cell.weight_hh.copy_(module.weight_hh_l0)
        cell.bias_ih.copy_(module.bias_ih_l0)
        cell.bias_hh.copy_(module.bias_hh_l0)
    batch = x.shape[1]
    h = torch.zeros(batch, module.hidden_size, device=x.device, dtype=x.dtype)
    c = torch.zeros_like(h)
    states = []
    for t in range(x.shape[0]):
        if isinstance(module, nn.LSTM):
            h, c = cell(x[t], (h, c))
        else:
            h = cell(x[t], h)
        h.retain_grad()
        states.append(h)
    (0.5 * (states[-1] ** 2).sum()).backward()
    return [s.grad for s in states]


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    print(
        f"hidden {args.hidden}, T {args.steps}, batch {args.batch}, {args.dtype}, "
        f"{args.repeats} interleaved repetitions, medians"
    )
    worst = 0.0
    for kind in (nn.RNN, nn.LSTM, nn.GRU):
        module = kind(args.hidden, args.hidden).to(device, dtype)
        x = torch.randn(args.steps, args.batch, args.hidden, device=device, dtype=dtype)
        if device.type != "cpu":
            # The same numbers on the device as on the CPU (float64, a short sequence).
            short = x[:50].double()
            on_device = gradient_profile(module.double(), short).layers[0].mean_grad_norm
            on_cpu = gradient_profile(module.cpu(), short.cpu()).layers[0].mean_grad_norm
            module.to(device, dtype)
            difference = float(abs(on_device - on_cpu).max() / abs(on_cpu).max())
            print(
                f"{kind.__name__:5s} float64 profile, {device} vs CPU: rel. diff {difference:.1e}"
            )

        def plain(module: nn.Module = module, x: torch.Tensor = x) -> None:
            module.zero_grad(set_to_none=True)
            output, _ = module(x)
            (0.5 * (output[-1] ** 2).sum()).backward()

        def profile(module: nn.Module = module, x: torch.Tensor = x) -> None:
            gradient_profile(module, x, loss="last")

        def naive(module: nn.Module = module, x: torch.Tensor = x) -> None:
            naive_profile(module, x)

        runs: dict[str, Callable[[], None]] = {"plain": plain, "profile": profile, "naive": naive}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for function in runs.values():
            function()  # warm-up
        for _ in range(args.repeats):
            for name, function in runs.items():
                synchronise(device)
                start = time.perf_counter()
                function()
                synchronise(device)
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) for name, values in times.items()}
        ratio = medians["profile"] / medians["plain"]
        worst = max(worst, ratio)
        print(
            f"{kind.__name__:5s} plain {medians['plain']:.4f} s  profile {medians['profile']:.4f} s"
            f"  naive {medians['naive']:.4f} s  profile/plain {ratio:.2f}"
            f"  naive/plain {medians['naive'] / medians['plain']:.2f}"
        )
    print(f"max profile/plain ratio = {worst:.2f}")


if __name__ == "__main__":
    main()
