"""The curse of memory: the states' sensitivity to the recurrence's own parameters, against
its closed form, autograd's full Jacobian and Monte Carlo."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad.errors import InvalidInputError, ModelError, UnsupportedModuleError
from rnngrad.modern import LRU
from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.modern.scan import linear_scan
from rnngrad.profile.sensitivity import memory_sensitivity, sensitivity_call


class Linear(DiagonalRecurrence):
    """``h_t = lambda h_{t-1} + x_t``, one lambda per mode (the closed form's recurrence)."""

    mode_parameters = ("lam",)

    def __init__(self, lam: list[float]) -> None:
        super().__init__()
        self.input_size = self.state_size = len(lam)
        self.lam = nn.Parameter(torch.tensor(lam, dtype=torch.float64))

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.lam * h + x

    def state_jacobian(
        self, x: torch.Tensor, states: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        return self.lam.detach()

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        return linear_scan(self.lam, x, h0)


def test_the_closed_form_of_the_curse_of_memory() -> None:
    """White inputs of variance s^2: E||h_T||^2 = sum_j s^2/(1 - lambda_j^2) and
    E||dh_T/dlambda||^2 = sum_j s^2 (1 + lambda_j^2)/(1 - lambda_j^2)^3 (stationary; the
    latter explodes as |lambda| -> 1), against 4000 sequences of 600 steps."""
    lam = [0.5, 0.9, 0.97]
    s = 0.7
    generator = torch.Generator().manual_seed(0)
    x = s * torch.randn(600, 4000, 3, dtype=torch.float64, generator=generator)
    result = memory_sensitivity(Linear(lam), x, loss="sum")
    lam_np = np.array(lam)
    states = (s**2 / (1 - lam_np**2)).sum()
    sensitivity = (s**2 * (1 + lam_np**2) / (1 - lam_np**2) ** 3).sum()
    entry = result.parameter("lam")
    assert entry.exact and entry.directions == 1
    measured_states = float((result.state_norm[:, -1] ** 2).mean())
    measured = float((entry.state_norm[:, -1] ** 2).mean())
    assert measured_states == pytest.approx(states, rel=0.06)
    assert measured == pytest.approx(sensitivity, rel=0.08)


def _jacobian_norms(function, parameter: torch.Tensor) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``(B, T)`` Frobenius norms of d states / d parameter by autograd's full Jacobian."""
    jacobian = torch.autograd.functional.jacobian(function, parameter)  # (T, B, N..., P...)
    steps, batch = jacobian.shape[:2]
    flat = jacobian.reshape(steps, batch, -1)
    if flat.is_complex():
        flat = torch.view_as_real(flat).flatten(2)
    return torch.linalg.vector_norm(flat, dim=2).T.numpy()


def test_the_lrus_per_mode_parameters_are_exact_and_the_others_estimated() -> None:
    """The LRU: ||dh_t/d nu_log|| (per mode, one forward-mode derivative) equals the norm
    of autograd's full Jacobian; ||dh_t/d B_re|| (not per mode) is Hutchinson's estimate,
    within its own interval of the exact norm on most tokens; ||dL/dtheta|| is autograd's."""
    torch.manual_seed(0)
    lru = LRU(2, 3).double()
    x = torch.randn(12, 2, 2, dtype=torch.float64)
    result = memory_sensitivity(lru, x, directions=64, seed=1)

    def states_of(name: str):  # type: ignore[no-untyped-def]
        def run(value: torch.Tensor) -> torch.Tensor:
            states = torch.func.functional_call(lru, {name: value}, (x,), strict=False)
            return torch.view_as_real(states)  # (T, B, N, 2): real and imaginary parts

        return run

    exact = _jacobian_norms(states_of("nu_log"), lru.nu_log.detach())
    np.testing.assert_allclose(result.parameter("nu_log").state_norm, exact, rtol=1e-10)
    estimate = result.parameter("B_re")
    truth = _jacobian_norms(states_of("B_re"), lru.B_re.detach())
    inside = np.abs(estimate.state_norm - truth) <= estimate.ci95 + 1e-12
    assert not estimate.exact and inside.mean() >= 0.8
    loss = 0.5 * (lru(x)[-1].abs() ** 2).sum()
    loss.backward()
    assert result.parameter("nu_log").grad_norm == pytest.approx(float(lru.nu_log.grad.norm()))


def test_mambas_a_log_sensitivity_is_exact() -> None:
    """A mambapy block: ||dh_t/d A_log|| of its (ED, N) state equals autograd's full
    Jacobian of its sequential selective scan."""
    mamba = pytest.importorskip("mambapy.mamba")
    torch.manual_seed(2)
    config = mamba.MambaConfig(d_model=4, n_layers=1, d_state=2, expand_factor=1)
    model = mamba.Mamba(config).double()
    x = torch.randn(2, 8, 4, dtype=torch.float64)
    result = memory_sensitivity(model, x)
    block = model.layers[0].mixer
    kept: list[torch.Tensor] = []
    from rnngrad.modern.selective import scans_through

    def scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, out = torch.zeros_like(b[:, 0]), []
        for t in range(b.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        kept.append(torch.stack(out, dim=1))
        return kept[-1]

    inner = model.layers[0].norm(x)

    def states(a_log: torch.Tensor) -> torch.Tensor:
        with scans_through(block, scan):
            torch.func.functional_call(block, {"A_log": a_log}, (inner,), strict=False)
        return kept[-1].transpose(0, 1)  # (T, B, ED, N)

    exact = _jacobian_norms(states, block.A_log.detach())
    entry = result.parameter("A_log")
    assert entry.exact
    np.testing.assert_allclose(entry.state_norm, exact, rtol=1e-6)


def test_a_dense_rnns_w_hh_is_estimated_within_its_interval() -> None:
    """A fused nn.RNN: ||dh_t/dW_hh|| (its outputs h_t) by Hutchinson's estimate, within
    its own interval of the exact norm of autograd's full Jacobian on most tokens."""
    torch.manual_seed(3)
    rnn = nn.RNN(2, 4).double()
    x = torch.randn(10, 2, 2, dtype=torch.float64)
    result = memory_sensitivity(rnn, x, directions=64, seed=2)
    entry = result.parameter("weight_hh_l0")

    def outputs(weight: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(rnn, {"weight_hh_l0": weight}, (x,), strict=False)[0]

    truth = _jacobian_norms(outputs, rnn.weight_hh_l0.detach())
    inside = np.abs(entry.state_norm - truth) <= entry.ci95 + 1e-12
    assert not entry.exact and inside.mean() >= 0.8
    np.testing.assert_allclose(result.state_norm, torch.linalg.vector_norm(
        rnn(x)[0].detach(), dim=2).T.numpy(), rtol=1e-12)  # fmt: skip


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_float32_fused_module_is_measured_as_its_float64_copy(kind: str) -> None:
    """A float32 fused module on the CPU (PyTorch runs it through oneDNN, whose kernel has
    no forward-mode rule): the same estimates, from the same signs, as its float64 copy,
    to float32's rounding; a bidirectional two-layer LSTM as a classifier builds it."""
    torch.manual_seed(5)
    module = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    single = module(3, 8, num_layers=2, bidirectional=True, batch_first=True)
    double = copy.deepcopy(single).double()
    x = torch.randn(2, 12, 3)
    measured = memory_sensitivity(single, x, directions=4, seed=1)
    reference = memory_sensitivity(double, x.double(), directions=4, seed=1)
    for entry, expected in zip(measured.parameters, reference.parameters, strict=True):
        np.testing.assert_allclose(entry.state_norm, expected.state_norm, rtol=1e-3, atol=1e-6)


def test_bad_input() -> None:
    with pytest.raises(UnsupportedModuleError, match="cell stepped"):
        memory_sensitivity(nn.RNNCell(2, 3), torch.randn(1, 2))
    with pytest.raises(InvalidInputError, match="directions"):
        memory_sensitivity(LRU(2, 3), torch.randn(5, 1, 2), directions=1)


class Forecaster(nn.Module):
    """An LRU between a linear encoder and a linear head, as a user writes one."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(2, 3)
        self.lru = LRU(3, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lru(self.encoder(x)).real)


def test_a_training_steps_function_measures_what_the_model_and_inputs_do() -> None:
    """sensitivity_call(fn) on the batch that fn runs: the states' sensitivities equal
    memory_sensitivity's on the same inputs (a route of its own: the model called with the
    recurrence's inputs), and ||dL/dtheta|| is autograd's on the user's loss."""
    torch.manual_seed(4)
    model = Forecaster().double()
    x = torch.randn(9, 3, 2, dtype=torch.float64)
    target = torch.randn(3, 1, dtype=torch.float64)

    def training_loss() -> torch.Tensor:
        return nn.functional.mse_loss(model(x)[-1], target)

    result = sensitivity_call(training_loss, model=model, directions=8, seed=3)
    direct = memory_sensitivity(model, x, directions=8, seed=3)
    for name in ("nu_log", "theta_log", "B_re"):
        np.testing.assert_allclose(
            result.parameter(name).state_norm, direct.parameter(name).state_norm, rtol=1e-12
        )
    training_loss().backward()
    for name, parameter in model.lru.named_parameters():
        expected = 0.0 if parameter.grad is None else float(parameter.grad.norm())
        assert result.parameter(name).grad_norm == pytest.approx(expected)
    assert result.parameter("nu_log").grad_norm > 0


def test_a_training_steps_function_that_fails_is_quoted_in_one_line() -> None:
    model = Forecaster()
    x = torch.randn(5, 2, 2)

    def broken() -> torch.Tensor:
        raise KeyError("target")

    with pytest.raises(ModelError, match=r"sensitivity_call.*KeyError"):
        sensitivity_call(broken, model=model)
    with pytest.raises(InvalidInputError, match="scalar tensor"):
        sensitivity_call(lambda: model(x), model=model)
    with pytest.raises(InvalidInputError, match="never called"):
        sensitivity_call(lambda: torch.zeros(()), model=model)
    with pytest.raises(InvalidInputError, match="function"):
        sensitivity_call(model(x), model=model)  # type: ignore[arg-type]


def test_a_fused_modules_named_loss_reads_its_own_output_as_the_profile_does() -> None:
    """loss="last" on a whole model around a batch-first nn.GRU: half the squared norm of
    the GRU's own last output (gradient_profile's contract), not of the model's head."""
    torch.manual_seed(7)

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(2, 3, batch_first=True)
            self.head = nn.Linear(3, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.gru(x)[0])

    model = Head().double()
    x = torch.randn(2, 6, 2, dtype=torch.float64)
    result = memory_sensitivity(model, x, loss="last", directions=2)
    named = dict(model.gru.named_parameters())
    value = 0.5 * (model.gru(x)[0][:, -1] ** 2).sum()
    for name, grad in zip(named, torch.autograd.grad(value, list(named.values())), strict=True):
        assert result.parameter(name).grad_norm == pytest.approx(float(grad.norm()), rel=1e-12)
