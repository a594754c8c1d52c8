"""The selective eigenvalue criterion: the coefficients a_t of a diagonal recurrence,
token by token, against autograd's step Jacobian."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.modern import LRU, MinGRU
from rnngrad.selective.criterion import selective_spectrum
from tests.reference import diagonal_log_moduli_autograd


class _Tagger(nn.Module):
    """A model around a minGRU: an embedding-like projection, the recurrence (time-major),
    a head."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(3, 4)
        self.rnn = MinGRU(4, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.project(x)))


def test_the_coefficients_are_the_step_jacobians_diagonal() -> None:
    """Inside a model, every ln|a_{t,j}| equals the log-modulus of the diagonal of
    dh_t/dh_{t-1} by autograd along the same trajectory; the horizons, the share of
    modes that keep e^-2 and the closing tokens follow from them as defined."""
    torch.manual_seed(0)
    model = _Tagger().double()
    x = torch.randn(40, 3, 3, dtype=torch.float64)
    result = selective_spectrum(model, x)
    layer = model.rnn
    h0 = torch.zeros(3, 5, dtype=torch.float64)
    expected = diagonal_log_moduli_autograd(layer, model.project(x), h0)
    np.testing.assert_allclose(result.log_abs, expected, rtol=1e-10, atol=1e-12)
    means = expected.mean(axis=(0, 1))
    np.testing.assert_allclose(result.horizon, -1.0 / means, rtol=1e-10)
    kept = (np.prod(np.exp(expected), axis=0) >= math.exp(-2)).mean()
    assert result.kept_share == pytest.approx(kept)
    assert result.closing[0] == int(np.argmin(expected.mean(axis=(1, 2)))) + 1
    assert result.opening[0] == int(np.argmax(expected.mean(axis=(1, 2)))) + 1
    assert result.module_name == "rnn" and "made selective" in result.sentence
    figure = result._figure()
    assert figure.traces[0].kind == "heatmap" and len(figure.traces[0].z) == 5


def test_a_fixed_lambda_is_not_selective() -> None:
    """The LRU's coefficients are its eigenvalues at every token: the horizons are
    -1/ln|lambda_j| and no token opens or closes the memory."""
    torch.manual_seed(1)
    lru = LRU(2, 4).double()
    result = selective_spectrum(lru, torch.randn(30, 2, 2, dtype=torch.float64))
    moduli = lru.eigenvalues().detach().abs().numpy()
    np.testing.assert_allclose(result.horizon, -1.0 / np.log(moduli), rtol=1e-10)
    assert result.closing == () and "not selective" in result.sentence


def test_a_dense_recurrence_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not a diagonal recurrence"):
        selective_spectrum(nn.RNN(2, 3), torch.randn(5, 1, 2))
