"""Lyapunov spectra of models as people build them: whole models, cells, each direction
of a bidirectional module, converted precision, and exact zeros."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.lyapunov.dynamics import CellDynamics
from rnngrad.lyapunov.spectrum import lyapunov_spectrum
from tests.examples_loader import load_example

# reorth=1: the routes compared here must agree to rounding, factorisation by factorisation.
SETTINGS = {"steps": 300, "warmup": 50, "batch": 2, "seed": 3, "reorth": 1}


def test_reverse_direction_equals_a_module_with_the_reverse_weights() -> None:
    """Layer 0, direction 1 of a bidirectional GRU under zero input is the plain GRU that
    holds the reverse weights: the same numbers from the same seed."""
    torch.manual_seed(0)
    both = nn.GRU(3, 5, bidirectional=True).double()
    plain = nn.GRU(3, 5).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(plain, f"{name}_l0").copy_(getattr(both, f"{name}_l0_reverse"))
    reverse = lyapunov_spectrum(both, direction=1, **SETTINGS)
    expected = lyapunov_spectrum(plain, **SETTINGS)
    np.testing.assert_allclose(reverse.exponents, expected.exponents, rtol=0, atol=1e-12)
    assert reverse.direction == 1 and reverse.layer == 0
    forward = lyapunov_spectrum(both, direction=0, **SETTINGS)
    assert not np.allclose(forward.exponents, reverse.exponents)


def test_upper_reverse_layer_is_driven_by_the_whole_sequence_below() -> None:
    """Layer 1, direction 1 of a stacked bidirectional LSTM: a plain LSTM holding its
    weights, driven by nn.LSTM's own layer-0 outputs in reverse time."""
    torch.manual_seed(1)
    stacked = nn.LSTM(2, 4, num_layers=2, bidirectional=True).double()
    below = nn.LSTM(2, 4, bidirectional=True).double()
    top = nn.LSTM(8, 4).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            for suffix in ("", "_reverse"):
                getattr(below, f"{name}_l0{suffix}").copy_(getattr(stacked, f"{name}_l0{suffix}"))
            getattr(top, f"{name}_l0").copy_(getattr(stacked, f"{name}_l1_reverse"))
    x = torch.randn(350, 2, 2, dtype=torch.float64)
    result = lyapunov_spectrum(stacked, layer=1, direction=1, inputs=x, **SETTINGS)
    with torch.no_grad():
        driving = below(x)[0].flip(0)
    expected = lyapunov_spectrum(top, inputs=driving, **SETTINGS)
    np.testing.assert_allclose(result.exponents, expected.exponents, rtol=0, atol=1e-12)


def test_a_decoder_cell_inside_a_model_against_the_generic_route() -> None:
    """lyapunov_spectrum(model, module="decoder") finds the nn.LSTMCell; its analytic
    Jacobians agree with torch.func on the same cell written with a flat state."""
    torch.manual_seed(2)
    model = load_example("seq2seq").Seq2Seq(vocab=10, embed=3, hidden=4).double()
    result = lyapunov_spectrum(model, module="decoder", inputs="random", **SETTINGS)
    assert result.module_name == "decoder" and result.state_size == 8
    cell = model.decoder

    def flat(x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        h, c = cell(x, (state[:, :4], state[:, 4:]))
        return torch.cat([h, c], dim=1)

    generic = CellDynamics(flat, state_size=8, input_size=3)
    reference = lyapunov_spectrum(generic, inputs="random", **SETTINGS)
    np.testing.assert_allclose(result.exponents, reference.exponents, atol=1e-8)
    with pytest.raises(InvalidInputError, match="several recurrent modules"):
        lyapunov_spectrum(model, **SETTINGS)


def test_a_float32_cell_is_measured_on_a_float64_copy() -> None:
    torch.manual_seed(4)
    cell = nn.GRUCell(2, 6)
    result = lyapunov_spectrum(cell, **SETTINGS)
    assert result.dtype == "float64" and result.converted_from == "float32"
    exact = lyapunov_spectrum(cell.double(), **SETTINGS)
    assert exact.converted_from is None
    np.testing.assert_array_equal(result.exponents, exact.exponents)


def test_dead_units_give_exact_minus_infinity_with_a_flag() -> None:
    """A diagonal relu RNN: live units sit at h* = b/(1 - w) with derivative 1, so their
    exponents are ln w (up to the O(1/T) of the random start); dead units (b < 0) have
    derivative 0: exactly -inf, flagged, with no interval and no numpy warning."""
    module = nn.RNN(1, 4, nonlinearity="relu").double()
    weights = torch.tensor([0.8, 0.5, 0.9, 0.3], dtype=torch.float64)
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.diag(weights))
        module.weight_ih_l0.zero_()
        module.bias_ih_l0.copy_(torch.tensor([1.0, 1.0, -10.0, -10.0]))
        module.bias_hh_l0.zero_()
    result = lyapunov_spectrum(module, steps=400, warmup=100, batch=3, seed=0)
    np.testing.assert_allclose(result.exponents[:2], [math.log(0.8), math.log(0.5)], atol=1e-2)
    assert np.isneginf(result.exponents[2:]).all()
    assert result.exact_zero is not None
    assert result.exact_zero.tolist() == [False, False, True, True]
    assert np.isnan(result.ci95[2:]).all() and np.isfinite(result.ci95[:2]).all()


def test_direction_of_a_unidirectional_module_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unidirectional"):
        lyapunov_spectrum(nn.GRU(2, 3).double(), direction=1, **SETTINGS)
    with pytest.raises(InvalidInputError, match="layer must be"):
        lyapunov_spectrum(nn.GRU(2, 3).double(), layer=2, **SETTINGS)


def test_a_float32_cell_of_ones_own_through_cell_dynamics() -> None:
    """The public route for a cell of one's own: a float32 nn.Module cell is used through a
    float64 copy, and the result says so."""
    torch.manual_seed(5)

    class Leaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(4, 4, bias=False)
            self.u = nn.Linear(2, 4)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return 0.5 * h + 0.5 * torch.tanh(self.w(h) + self.u(x))

    cell = Leaky()
    result = lyapunov_spectrum(CellDynamics(cell, state_size=4, input_size=2), **SETTINGS)
    assert result.converted_from == "float32" and result.dtype == "float64"
    import copy

    exact = lyapunov_spectrum(
        CellDynamics(copy.deepcopy(cell).double(), state_size=4, input_size=2), **SETTINGS
    )
    assert exact.converted_from is None
    np.testing.assert_array_equal(result.exponents, exact.exponents)
    assert next(cell.parameters()).dtype == torch.float32, "the user's cell is left as it is"


def test_finite_time_spectrum_of_one_direction_equals_that_direction_as_its_own_module() -> None:
    """The reverse direction of a bidirectional LSTM's first layer, driven by i.i.d. inputs,
    is the unidirectional LSTM with the reverse weights: the same finite-time singular
    values of dh_T/dh_k for every k."""
    from rnngrad.lyapunov.finite_time import finite_time_spectrum

    torch.manual_seed(11)
    both = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    alone = torch.nn.LSTM(3, 4).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(alone, f"{name}_l0").copy_(getattr(both, f"{name}_l0_reverse"))
    settings = {"steps": 30, "warmup": 5, "seed": 3, "inputs": "random"}
    reverse = finite_time_spectrum(both, layer=0, direction=1, **settings)  # type: ignore[arg-type]
    expected = finite_time_spectrum(alone, **settings)  # type: ignore[arg-type]
    assert reverse.log_singular_values is not None and expected.log_singular_values is not None
    np.testing.assert_allclose(reverse.log_singular_values, expected.log_singular_values,
                               rtol=1e-10, atol=1e-10)  # fmt: skip
    upper = finite_time_spectrum(both, layer=1, direction=0, **settings)  # type: ignore[arg-type]
    assert upper.log_singular_values is not None and upper.log_singular_values.shape == (30, 8)
    assert np.isfinite(upper.log_singular_values[:, 0]).all()
