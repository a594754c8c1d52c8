"""The factorisations of the QR method and the adaptive interval, against Householder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad.lyapunov.orthonormal import (
    MAX_INTERVAL,
    ROUNDING_TOLERANCE,
    log_abs_diag_qr,
    next_interval,
)
from rnngrad.lyapunov.spectrum import lyapunov_spectrum, random_tanh_network


def _matrices(batch: int, n: int, k: int, condition: float, seed: int) -> torch.Tensor:
    """``(B, n, k)`` matrices with singular values spread log-evenly over ``condition``."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.linalg.qr(torch.randn(batch, n, k, generator=generator, dtype=torch.float64))[0]
    right = torch.linalg.qr(torch.randn(batch, k, k, generator=generator, dtype=torch.float64))[0]
    singular = torch.logspace(0, -math.log10(condition), k, dtype=torch.float64)
    return left @ torch.diag_embed(singular.expand(batch, k)) @ right


@pytest.mark.parametrize(("n", "k"), [(30, 30), (40, 7), (5, 1)])
@pytest.mark.parametrize("condition", [1.0, 1e3])
def test_cholesky_qr2_equals_householder(n: int, k: int, condition: float) -> None:
    """CholeskyQR2 gives the same |diag R| (to 1e-12) and the same columns up to sign."""
    a = _matrices(3, n, k, condition, seed=n + k)
    q_h, log_h = log_abs_diag_qr(a, "householder")
    q_c, log_c = log_abs_diag_qr(a, "cholesky2")
    np.testing.assert_allclose(log_c.numpy(), log_h.numpy(), rtol=0, atol=1e-12)
    eye = torch.eye(k, dtype=torch.float64)
    torch.testing.assert_close(q_c.mT @ q_c, eye.expand(3, k, k), rtol=0, atol=1e-13)
    signs = torch.sign(torch.diagonal(q_h.mT @ q_c, dim1=-2, dim2=-1))
    torch.testing.assert_close(q_c, q_h * signs.unsqueeze(-2), rtol=0, atol=1e-12)


def test_cholesky_qr2_falls_back_on_an_ill_conditioned_basis() -> None:
    """cond 1e12: beyond CholeskyQR2's reach, the call is Householder's, bit for bit."""
    a = _matrices(2, 20, 20, 1e12, seed=1)
    q_h, log_h = log_abs_diag_qr(a, "householder")
    q_c, log_c = log_abs_diag_qr(a, "cholesky2")
    assert torch.equal(log_c, log_h) and torch.equal(q_c, q_h)
    # an exactly dependent column: -inf, and still Householder's answer
    a[:, :, 3] = a[:, :, 2]
    _, log_dependent = log_abs_diag_qr(a, "cholesky2")
    assert bool((log_dependent[:, 3] < -25).all())


def test_next_interval_keeps_the_rounding_within_the_tolerance() -> None:
    """m * spread <= ln(tolerance / eps), clipped to [1, MAX_INTERVAL]."""
    budget = math.log(ROUNDING_TOLERANCE / torch.finfo(torch.float64).eps)
    logs = torch.tensor([[0.5, -2.0, -9.5]], dtype=torch.float64)  # over 2 steps: spread 5
    assert next_interval(logs, 2, torch.float64) == int(budget / 5.0)
    flat = torch.tensor([[0.001, -0.002]], dtype=torch.float64)
    assert next_interval(flat, 1, torch.float64) == MAX_INTERVAL
    growing = torch.tensor([[4.0, 4.0]], dtype=torch.float64)  # spread 0, growth 4 per step
    assert next_interval(growing, 1, torch.float64) == int(budget / 4.0)
    dead = torch.tensor([[0.1, -math.inf]], dtype=torch.float64)
    assert next_interval(dead, 3, torch.float64) == 1
    # float32 has 9 nats of budget at the same tolerance
    assert next_interval(logs, 2, torch.float32) == 1


@pytest.mark.parametrize("qr", ["householder", "cholesky2"])
def test_adaptive_interval_gives_the_exponents_of_factoring_every_step(qr: str) -> None:
    """A contracting tanh network (no chaos to amplify rounding): 'auto' agrees with
    reorth=1 to 1e-6 (the design allows 1e-3 relative per factorisation, of either
    sign: about 5e-8 is seen) while factoring far less often; a chaotic one agrees
    well inside its interval."""
    calm = random_tanh_network(30, 0.8, seed=1)
    settings = {"steps": 600, "warmup": 50, "batch": 2, "seed": 0, "progress": False}
    every = lyapunov_spectrum(calm, reorth=1, **settings)  # type: ignore[arg-type]
    auto = lyapunov_spectrum(calm, reorth="auto", qr=qr, **settings)  # type: ignore[arg-type]
    np.testing.assert_allclose(auto.exponents, every.exponents, rtol=0, atol=1e-6)
    assert every.factorisations == 600 and auto.factorisations < 300
    chaotic = random_tanh_network(40, 2.0, seed=2)
    every = lyapunov_spectrum(chaotic, reorth=1, **settings)  # type: ignore[arg-type]
    auto = lyapunov_spectrum(chaotic, reorth="auto", qr=qr, **settings)  # type: ignore[arg-type]
    assert auto.factorisations < 450
    assert np.all(np.abs(auto.exponents - every.exponents) < 0.1 * every.ci95)


def test_few_leading_exponents_factor_rarely() -> None:
    """k = 2 of an LSTM: the two columns grow alike, so the interval is long."""
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 16).double()
    result = lyapunov_spectrum(lstm, k=2, steps=1000, batch=2, progress=False)
    every = lyapunov_spectrum(lstm, k=2, steps=1000, batch=2, reorth=1, progress=False)
    assert result.factorisations <= 1000 / 10
    np.testing.assert_allclose(result.exponents, every.exponents, rtol=0, atol=1e-9)
