"""Overhead of the per-time-step gradient profile against a plain forward+backward.

For nn.RNN, nn.LSTM and nn.GRU (hidden 256, T 1000, batch 32, float32 by
default) it times, interleaved in one run so that machine noise hits all alike:

- plain: the fused module's forward and ``loss.backward()`` (what training does);
- profile: :func:`rnngrad.gradient_profile`, every layer's ``dL/dh_t`` for all t,
  by its default route (``auto``: the loop over time on a CPU, the fused
  kernel's backward on a GPU);
- other route: the same profile by the route ``auto`` does not take there;
- naive: the cell-by-cell loop with ``retain_grad`` that users otherwise write,
  run on the same parameters (``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``).

It prints medians and the ratios to plain; the last line is
``max profile/plain ratio = R`` (goal: R <= 1.0 on a CPU, <= 1.5 on a GPU).

``--sweep`` instead runs plain and profile (no naive) for hidden 64, 256 and
1024 and T 100, 1000 and 10000 (``--hiddens``, ``--lengths`` to choose), and
beside each time the peak memory of one call, measured in a fresh process
(the growth of the resident set's high-water mark over what the module and its
input hold); sizes the memory budget refuses are said so. The last line is
``max profile/plain ratio at hidden >= 256 = R`` (goal R <= 1.0, and the
profile's peak memory no more than plain's).

Run: ``.venv/bin/python benchmarks/profile_overhead.py [--device cuda] [--repeats N] [--sweep]``
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


_KINDS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def _peak_child(kind: str, hidden: int, length: int, batch: int, which: str) -> None:
    """In a fresh process: one call of ``which``; prints the peak memory growth in MiB
    (Linux: writing 5 to ``/proc/self/clear_refs`` resets the high-water mark VmHWM)."""

    def status(field: str) -> float:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024  # kB to MiB
        raise RuntimeError(f"{field} not in /proc/self/status")

    torch.manual_seed(0)
    module = _KINDS[kind](hidden, hidden)
    x = torch.randn(length, batch, hidden)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as reset:
        reset.write("5")
    before = status("VmRSS")
    if which == "plain":
        output, _ = module(x)
        (0.5 * (output[-1] ** 2).sum()).backward()
    else:
        gradient_profile(module, x, loss="last")
    print(status("VmHWM") - before)


def peak_mib(kind: str, hidden: int, length: int, batch: int, which: str) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, __file__, "--peak-child", kind, str(hidden), str(length), str(batch),
         which],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return "refused" if "memory" in last else f"failed ({last[:60]})"
    return f"{float(done.stdout.strip().splitlines()[-1]):.0f} MiB"


def sweep(hiddens: list[int], lengths: list[int], batch: int, repeats: int) -> None:
    """Plain against profile over sizes, with peak memory; prints the worst ratio."""
    worst = 0.0
    for hidden in hiddens:
        for length in lengths:
            for name, kind in _KINDS.items():
                torch.manual_seed(0)
                module = kind(hidden, hidden)
                x = torch.randn(length, batch, hidden)
                try:
                    # warm-up at full size: the profile refuses what its memory budget
                    # cannot hold before allocating (plain would try, and may be killed)
                    gradient_profile(module, x, loss="last")
                    times = _interleaved(module, x, repeats)
                except Exception as error:  # the memory budget, or the machine
                    print(f"{name:5s} hidden {hidden:5d} T {length:6d}  {type(error).__name__}: "
                          f"{str(error)[:80]}")  # fmt: skip
                    continue
                ratio = times["profile"] / times["plain"]
                if hidden >= 256:
                    worst = max(worst, ratio)
                memory = {w: peak_mib(name, hidden, length, batch, w) for w in times}
                print(f"{name:5s} hidden {hidden:5d} T {length:6d}  plain {times['plain']:8.3f} s "
                      f"{memory['plain']:>10s}  profile {times['profile']:8.3f} s "
                      f"{memory['profile']:>10s}  profile/plain {ratio:.2f}")  # fmt: skip
                del module, x
    print(f"max profile/plain ratio at hidden >= 256 = {worst:.2f}")


def _interleaved(module: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    def plain() -> None:
        module.zero_grad(set_to_none=True)
        output, _ = module(x)
        (0.5 * (output[-1] ** 2).sum()).backward()

    def profile() -> None:
        gradient_profile(module, x, loss="last")

    runs = {"plain": plain, "profile": profile}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, function in runs.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    module.zero_grad(set_to_none=True)
    return {name: statistics.median(values) for name, values in times.items()}


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
    parser.add_argument("--sweep", action="store_true", help="sizes and peak memory (CPU)")
    parser.add_argument("--hiddens", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--peak-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        kind, hidden, length, batch, which = args.peak_child
        _peak_child(kind, int(hidden), int(length), int(batch), which)
        return
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    if args.sweep:
        print(f"batch {args.batch}, float32, {min(args.repeats, 3)} interleaved repetitions, "
              "medians; peak memory of one call in a fresh process")  # fmt: skip
        sweep(args.hiddens, args.lengths, args.batch, min(args.repeats, 3))
        return
    print(
        f"hidden {args.hidden}, T {args.steps}, batch {args.batch}, {args.dtype}, "
        f"{args.repeats} interleaved repetitions, medians"
    )
    worst = 0.0
    other_route = "recursion" if device.type == "cuda" else "fused"
    for kind in (nn.RNN, nn.LSTM, nn.GRU):
        module = kind(args.hidden, args.hidden).to(device, dtype)
        x = torch.randn(args.steps, args.batch, args.hidden, device=device, dtype=dtype)
        if device.type != "cpu":
            # The same numbers on the device as on the CPU (float64, a short sequence).
            short = x[:50].double()
            on_device = gradient_profile(module.double(), short, route="fused")
            on_cpu = gradient_profile(module.cpu(), short.cpu(), route="recursion")
            module.to(device, dtype)
            a, b = on_device.layers[0].mean_grad_norm, on_cpu.layers[0].mean_grad_norm
            difference = float(abs(a - b).max() / abs(b).max())
            print(
                f"{kind.__name__:5s} float64 profile, fused route on {device} vs recursion on "
                f"the CPU: rel. diff {difference:.1e}"
            )

        def plain(module: nn.Module = module, x: torch.Tensor = x) -> None:
            module.zero_grad(set_to_none=True)
            output, _ = module(x)
            (0.5 * (output[-1] ** 2).sum()).backward()

        def profile(module: nn.Module = module, x: torch.Tensor = x) -> None:
            gradient_profile(module, x, loss="last")

        def other(module: nn.Module = module, x: torch.Tensor = x) -> None:
            gradient_profile(module, x, loss="last", route=other_route)  # type: ignore[arg-type]

        def naive(module: nn.Module = module, x: torch.Tensor = x) -> None:
            naive_profile(module, x)

        runs: dict[str, Callable[[], None]] = {
            "plain": plain, "profile": profile, "other": other, "naive": naive,
        }  # fmt: skip
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
            f"  route {other_route}: {medians['other']:.4f} s,"
            f" /plain {medians['other'] / medians['plain']:.2f}"
        )
    print(f"max profile/plain ratio = {worst:.2f}")


if __name__ == "__main__":
    main()
