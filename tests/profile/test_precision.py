"""Half-precision models and autocast regions: profiled and measured on a float32 or
float64 copy, with the dtype recorded and the flushed gradients named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile
from rnngrad.lyapunov.spectrum import lyapunov_spectrum
from tests.cell_reference import cell_reference


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 6, num_layers=2)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][-1])


@pytest.mark.parametrize("reduced", [torch.float16, torch.bfloat16])
def test_a_half_precision_model_is_profiled_on_a_float32_copy(reduced: torch.dtype) -> None:
    torch.manual_seed(0)
    model = Model().to(reduced)
    x = torch.randn(12, 4, 3).to(reduced)
    profile = gradient_profile(model, x, loss=lambda out: out.float().pow(2).sum())
    assert profile.dtype == "float32" and profile.source_dtype == str(reduced)[6:]
    assert next(model.parameters()).dtype == reduced, "the model itself is left as it is"
    expected = gradient_profile(model.float(), x.float(), loss=lambda out: out.pow(2).sum())
    for a, b in zip(profile.layers, expected.layers, strict=True):
        np.testing.assert_array_equal(a.grad_norm, b.grad_norm)
    exact = gradient_profile(
        model, x, loss=lambda out: out.pow(2).sum(), dtype=torch.float64, keep_gradients=True
    )
    assert exact.dtype == "float64"
    reference, _, _ = cell_reference(
        model.rnn.double(), x.double(), lambda out: model.head.double()(out[-1]).pow(2).sum()
    )
    for lp in exact.layers:
        assert lp.grad is not None
        expected_h = reference[(lp.layer, lp.direction)]
        assert (lp.grad - expected_h).abs().max() <= 1e-10 * expected_h.abs().max()


def test_autocast_is_switched_off_for_the_profile() -> None:
    """Under torch.autocast the fused kernels used to fail with a raw RuntimeError."""
    torch.manual_seed(1)
    model = Model()
    x = torch.randn(8, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        profile = gradient_profile(model, x, loss=lambda out: out.float().pow(2).sum())
        spectrum = lyapunov_spectrum(model, steps=40, warmup=5, batch=1)
    assert profile.dtype == "float32" and profile.source_dtype == "autocast bfloat16"
    plain = gradient_profile(model, x, loss=lambda out: out.pow(2).sum())
    assert plain.source_dtype is None
    for a, b in zip(profile.layers, plain.layers, strict=True):
        np.testing.assert_array_equal(a.grad_norm, b.grad_norm)
    assert np.isfinite(spectrum.exponents).all()


def test_gradients_that_float16_flushes_to_zero_are_named() -> None:
    """A contracting tanh RNN: ||dL/dh_t|| falls by about 10x per step. Where the float32
    norm is below float16's smallest subnormal, the float16 computation itself gives
    exactly zero, and the note counts those steps."""
    torch.manual_seed(2)
    module = nn.RNN(2, 4, bias=False)
    with torch.no_grad():
        module.weight_hh_l0.copy_(0.1 * torch.eye(4))
    x = torch.randn(30, 3, 2)
    profile = gradient_profile(module.half(), x.half())
    smallest = float(torch.finfo(torch.float16).tiny * torch.finfo(torch.float16).eps)
    flushed = int(np.sum(np.all(profile.layers[0].grad_norm < smallest, axis=0)))
    assert flushed > 5
    assert profile.precision_note is not None
    assert f"layer 0 at {flushed} of 30 steps" in profile.precision_note
    in_half = gradient_profile(module, x.half(), dtype=torch.float16)
    below = profile.layers[0].grad_norm < smallest
    assert np.all(in_half.layers[0].grad_norm[below] == 0.0)


def test_a_half_precision_cell_is_measured_in_float64() -> None:
    torch.manual_seed(3)
    cell = nn.GRUCell(2, 5).half()
    result = lyapunov_spectrum(cell, steps=60, warmup=10, batch=2)
    assert result.dtype == "float64" and result.converted_from == "float16"
    assert np.isfinite(result.exponents).all()
