"""The GPU paths against the CPU: the same numbers on a CUDA device.

Each check computes one thing on the CPU and on the first CUDA device from the
same weights and inputs: the modern cells' scans and their parameter gradients,
the per-time-step gradient profile by both routes (the fused route is the one
``auto`` takes on a GPU), a Lyapunov spectrum, the differentiable exponents that
flossing trains on, a rate network's profile and page, and a short lab run. Every check
but the lab run is in float64, where the two devices agree to rounding; the lab
runs in float32 and is compared step by step on its held-out loss.

Skipped where torch sees no CUDA device.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile, lyapunov_spectrum
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.train import train
from rnngrad.modern import LRU, IndRNN, MinGRU, MinLSTM

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

GPU = "cuda"


def on(device: str, module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).to(device)


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm", "indrnn"])
def test_the_modern_cells_scan_on_a_gpu_as_on_the_cpu(cell: str) -> None:
    steps, batch, size = 300, 4, 8
    torch.manual_seed(0)
    make = {
        "lru": lambda: LRU(size, size),
        "mingru": lambda: MinGRU(size, size),
        "minlstm": lambda: MinLSTM(size, size),
        "indrnn": lambda: IndRNN(size, size, max_length=steps),
    }[cell]
    layer = make().double()
    x = torch.randn(steps, batch, size, dtype=torch.float64)
    weights = torch.randn(steps, batch, size, dtype=torch.float64)
    results = {}
    for device in ("cpu", GPU):
        moved = on(device, layer)
        states = moved(x.to(device))
        (states.real * weights.to(device)).sum().backward()
        grads = [None if p.grad is None else p.grad.cpu() for p in moved.parameters()]
        with torch.no_grad():  # the layer's own definition, one step at a time
            h = moved.initial_state(batch, x.to(device))
            stepped = []
            for t in range(steps):
                h = moved.step(x[t].to(device), h)
                stepped.append(h)
        torch.testing.assert_close(states.detach(), torch.stack(stepped), rtol=1e-10, atol=1e-12)
        results[device] = (states.detach().cpu(), grads)
    torch.testing.assert_close(results[GPU][0], results["cpu"][0], rtol=1e-10, atol=1e-12)
    for gpu_grad, cpu_grad in zip(results[GPU][1], results["cpu"][1], strict=True):
        assert (gpu_grad is None) == (cpu_grad is None)
        if cpu_grad is not None:
            torch.testing.assert_close(gpu_grad, cpu_grad, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("route", ["recursion", "fused", "auto"])  # auto: fused on a GPU
def test_the_gradient_profile_on_a_gpu_is_the_cpus(kind: str, route: str) -> None:
    torch.manual_seed(1)
    module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    model = module(5, 16, num_layers=2, bidirectional=True).double()
    x = torch.randn(120, 3, 5, dtype=torch.float64)
    expected = gradient_profile(model, x, loss="sum", route="recursion")
    found = gradient_profile(on(GPU, model), x.to(GPU), loss="sum", route=route)
    assert found.loss_value == pytest.approx(expected.loss_value, rel=1e-12)
    for got, want in zip(found.layers, expected.layers, strict=True):
        np.testing.assert_allclose(got.grad_norm, want.grad_norm, rtol=1e-9)
        if want.cell_grad_norm is not None:
            np.testing.assert_allclose(got.cell_grad_norm, want.cell_grad_norm, rtol=1e-9)
        assert got.verdict.label == want.verdict.label
        assert got.log10_ratio == pytest.approx(want.log10_ratio, rel=1e-9)


def test_a_lyapunov_spectrum_on_a_gpu_is_the_cpus() -> None:
    """A contracting network: the trajectory settles, and the two devices agree to
    rounding. A chaotic one: rounding that differs between the devices separates the
    trajectories at the rate of the largest exponent, so the two runs are two samples,
    and they must agree within their own 95% intervals."""
    torch.manual_seed(3)
    model = nn.RNN(3, 10).double()
    settings: dict[str, Any] = {"steps": 1000, "warmup": 100, "batch": 4, "seed": 0}
    with torch.no_grad():
        model.weight_hh_l0.mul_(0.5)
    expected = lyapunov_spectrum(model, **settings)
    found = lyapunov_spectrum(on(GPU, model), **settings)
    np.testing.assert_allclose(found.exponents, expected.exponents, rtol=1e-8, atol=1e-10)
    with torch.no_grad():
        model.weight_hh_l0.mul_(12.0)  # chaotic: lambda_1 about 0.13 nats per step
    expected = lyapunov_spectrum(model, **settings)
    found = lyapunov_spectrum(on(GPU, model), **settings)
    assert expected.exponents[0] > 0.01
    difference = np.abs(found.exponents - expected.exponents)
    assert (difference <= found.ci95 + expected.ci95).all(), (difference, found.ci95)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "lru"])
def test_a_lab_run_on_a_gpu_follows_the_cpu_run(cell: str, tmp_path: Path) -> None:
    config = TrainConfig(
        task="adding", seq_len=40, cell=cell, hidden=16, steps=40, batch=16,
        eval_every=10, eval_batch=200, checkpoint_every=1000, profile_every=1000,
    )  # fmt: skip
    cpu = train(config, tmp_path / "cpu", progress=False, device="cpu")
    gpu = train(config, tmp_path / "gpu", progress=False, device=GPU)
    assert gpu.device.startswith("cuda")
    cpu_losses = [row["loss"] for row in cpu.records["evaluations"]]
    gpu_losses = [row["loss"] for row in gpu.records["evaluations"]]
    assert len(gpu_losses) == len(cpu_losses) == 4  # steps 10, 20, 30, 40
    # float32 on two devices: the same data and initialisation (drawn on the CPU),
    # rounding that differs from the first product on and grows with training.
    assert gpu_losses[0] == pytest.approx(cpu_losses[0], rel=1e-3)
    assert gpu_losses == pytest.approx(cpu_losses, rel=2e-2)


@pytest.mark.parametrize("kind", ["rnn", "rate"])
def test_flossing_exponents_and_their_gradient_on_a_gpu_are_the_cpus(kind: str) -> None:
    """The differentiable QR method that flossing trains on (a tanh RNN's and a rate
    network's Jacobians, a QR per step, the gradient back to the weights): the same
    exponents and gradients on both devices, in float64, from the same bases."""
    from rnngrad.lab.flossing import flossing_exponents, flossing_penalty
    from rnngrad.rate import RateRNN

    torch.manual_seed(4)
    model = (nn.RNN(3, 20) if kind == "rnn" else RateRNN(3, 20, delta=0.4, gain=2.0)).double()
    x = torch.randn(60, 4, 3, dtype=torch.float64)
    results = {}
    for device in ("cpu", GPU):
        moved = on(device, model)
        exponents = flossing_exponents(moved, x.to(device), 5, torch.Generator().manual_seed(0))
        flossing_penalty(exponents).backward()
        grads = [p.grad.cpu() for p in moved.parameters() if p.grad is not None]
        results[device] = (exponents.detach().cpu(), grads)
    torch.testing.assert_close(results[GPU][0], results["cpu"][0], rtol=1e-9, atol=1e-11)
    assert len(results[GPU][1]) == len(results["cpu"][1]) > 0
    for gpu_grad, cpu_grad in zip(results[GPU][1], results["cpu"][1], strict=True):
        torch.testing.assert_close(gpu_grad, cpu_grad, rtol=1e-8, atol=1e-10)


def test_a_rate_networks_profile_and_page_on_a_gpu_are_the_cpus() -> None:
    """A contracting rate network: its profile (its own route) on the GPU is the CPU's,
    and its page built with device="cuda" shows the CPU page's numbers."""
    from rnngrad.rate import RateRNN
    from rnngrad.report.build import build_sections

    torch.manual_seed(5)
    network = RateRNN(3, 16, delta=0.3).double()
    x = torch.randn(80, 3, 3, dtype=torch.float64)
    expected = gradient_profile(network, x, loss="sum")
    found = gradient_profile(on(GPU, network), x.to(GPU), loss="sum")
    np.testing.assert_allclose(found.layers[0].grad_norm, expected.layers[0].grad_norm, rtol=1e-9)
    cpu = {s.key: s for s in build_sections(module=network, inputs=x, quick=True)}
    gpu = {s.key: s for s in build_sections(module=network, inputs=x, quick=True, device=GPU)}
    assert gpu["profile"].numbers["layer 0"]["log10_ratio"] == pytest.approx(
        cpu["profile"].numbers["layer 0"]["log10_ratio"], rel=1e-9
    )
    np.testing.assert_allclose(
        gpu["lyapunov"].numbers["the recurrence"]["exponents"],
        cpu["lyapunov"].numbers["the recurrence"]["exponents"],
        rtol=1e-7, atol=1e-9,
    )  # fmt: skip
