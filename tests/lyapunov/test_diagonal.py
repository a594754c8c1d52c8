"""Exact Lyapunov exponents of diagonal recurrences, and the QR route's honesty about
modes it has not resolved."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import CellDynamics, lyapunov_spectrum
from rnngrad.errors import InvalidInputError
from rnngrad.modern import LRU, IndRNN, MinGRU
from tests.reference import diagonal_log_moduli_autograd


def test_the_lrus_exponents_are_the_log_moduli_of_its_eigenvalues() -> None:
    """A fixed diagonal lambda: lambda_j = ln|lambda_j|, once for the real and once for the
    imaginary part of each complex mode, with no spread at all."""
    torch.manual_seed(0)
    lru = LRU(3, 5).double()
    result = lyapunov_spectrum(lru, steps=200, batch=3, inputs="random", progress=False)
    moduli = np.log(lru.eigenvalues().detach().abs().numpy())
    expected = np.sort(np.concatenate([moduli, moduli]))[::-1]
    assert result.method == "exact diagonal" and result.factorisations == 0
    np.testing.assert_allclose(result.exponents, expected, rtol=1e-12)
    assert np.all(result.ci95 < 1e-12) and result.reliable.all()


@pytest.mark.parametrize("kind", ["mingru", "indrnn"])
def test_time_varying_exponents_are_time_averages_of_log_coefficients(kind: str) -> None:
    """minGRU (a_t = 1 - z_t, set by the input) and IndRNN (u relu'(.), set by the state
    too): each exponent is the time average of its mode's ln|a_t|, against the diagonal
    of autograd's step Jacobian along the same trajectory from the same initial states."""
    torch.manual_seed(1)
    layer = (MinGRU(2, 4) if kind == "mingru" else IndRNN(2, 4)).double()
    if kind == "indrnn":
        with torch.no_grad():
            layer.u.copy_(torch.tensor([0.5, -0.9, 0.99, 0.7], dtype=torch.float64))
    steps, batch = 120, 3
    generator = torch.Generator().manual_seed(5)
    inputs = torch.randn(steps, batch, 2, dtype=torch.float64, generator=generator)
    result = lyapunov_spectrum(layer, steps=steps, warmup=0, batch=batch, inputs=inputs,
                               progress=False)  # fmt: skip
    # The same initial states: the generator's first draw, as the route draws them.
    from rnngrad.lyapunov.trajectory import measured_system

    dynamics = measured_system(
        layer, inputs, module=None, layer=None, direction=0, dtype=torch.float64,
        batch=batch, length=steps, seed=0,
    ).dynamics  # fmt: skip
    h0 = dynamics.initial_state(batch, torch.Generator().manual_seed(0))
    logs = diagonal_log_moduli_autograd(layer, inputs, h0)
    per_mode = logs.mean(axis=(0, 1))
    finite = np.isfinite(per_mode)
    expected = np.sort(per_mode[finite])[::-1]
    np.testing.assert_allclose(result.exponents[: expected.size], expected, rtol=1e-10)
    assert result.method == "exact diagonal"


def test_qr_agrees_with_the_exact_route() -> None:
    """The QR method on the same minGRU converges to the exact exponents (and their sum,
    the mean log-determinant, agrees closely)."""
    torch.manual_seed(2)
    layer = MinGRU(2, 3).double()
    exact = lyapunov_spectrum(layer, steps=3000, batch=2, inputs="random", progress=False)
    qr = lyapunov_spectrum(layer, steps=3000, batch=2, inputs="random", progress=False,
                           method="qr")  # fmt: skip
    assert qr.method == "qr" and qr.factorisations > 0
    np.testing.assert_allclose(qr.exponents, exact.exponents, atol=0.02)
    assert abs(qr.total - exact.total) < 2e-3


def _selective_cell(modes: int = 8) -> tuple[CellDynamics, torch.Tensor, torch.Tensor]:
    """A selective scan h_t = exp(Delta_t A) h_{t-1} + Delta_t x_t with slow,
    near-degenerate modes (Delta_t ~ 1e-3, A_j = -j): every ln a_{t,j} = Delta_{t,j} A_j."""
    generator = torch.Generator().manual_seed(0)
    rates = -torch.arange(1, modes + 1, dtype=torch.float64)
    weights = 0.5 * torch.randn(modes, dtype=torch.float64, generator=generator)

    def delta(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x * weights - 7.0)

    def cell(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.exp(delta(x) * rates) * h + delta(x) * x

    return CellDynamics(cell, state_size=modes, input_size=1), rates, weights


@pytest.mark.parametrize("steps", [56, 2496])
def test_qr_marks_unresolved_slow_modes_unreliable(steps: int) -> None:
    """Regression: on slow, near-degenerate modes the QR estimates' intervals excluded the
    exact exponents (the mean of Delta_t A_j) while reliable was True. Every exponent whose
    interval misses the exact value is now marked unreliable: its interval overlaps a
    neighbour's, so the run has not resolved it."""
    dynamics, rates, weights = _selective_cell()
    inputs = torch.randn(2 * steps, 4, 1, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    result = lyapunov_spectrum(dynamics, steps=steps, warmup=steps, batch=4, inputs=inputs,
                               progress=False)  # fmt: skip
    deltas = nn.functional.softplus(inputs[steps:] * weights - 7.0)
    exact = np.sort((deltas * rates).mean(dim=(0, 1)).numpy())[::-1]
    missed = np.abs(result.exponents - exact) > result.ci95
    assert missed.any()  # the case the regression is about
    assert not (result.reliable & missed).any(), (result.exponents, exact, result.ci95)


def test_exact_is_refused_for_a_dense_recurrence() -> None:
    with pytest.raises(InvalidInputError, match="not diagonal"):
        lyapunov_spectrum(nn.RNN(2, 3), steps=10, method="exact", progress=False)
    with pytest.raises(InvalidInputError, match="method must be"):
        lyapunov_spectrum(nn.RNN(2, 3), steps=10, method="svd", progress=False)  # type: ignore[arg-type]
