"""The differentiable QR method of gradient flossing: its gradients by finite differences,
a closed form, and its exponents against :func:`rnngrad.lyapunov_spectrum`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad.lyapunov.differentiable import differentiable_exponents, random_basis
from rnngrad.lyapunov.dynamics import ModuleDynamics


@pytest.mark.parametrize(("rows", "columns"), [(80, 80), (80, 20)])
def test_the_qr_gradient_matches_finite_differences(rows: int, columns: int) -> None:
    """``torch.linalg.qr`` differentiates ``ln |R_ii|`` as finite differences do, in
    float64, at the sizes flossing uses (80 units, up to all 80 exponents)."""
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(rows, columns, generator=generator, dtype=torch.float64)
    matrix.requires_grad_(True)

    def log_diagonal(m: torch.Tensor) -> torch.Tensor:
        return torch.linalg.qr(m).R.diagonal().abs().log()

    assert torch.autograd.gradcheck(log_diagonal, (matrix,), eps=1e-6, atol=1e-6, rtol=1e-4)


def _module(kind: str, hidden: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if kind in ("tanh", "relu"):
        rnn = nn.RNN(2, hidden, nonlinearity=kind).double()
        if kind == "relu":  # every unit active: a dead one's direction has no gradient
            with torch.no_grad():
                rnn.bias_ih_l0.fill_(2.0)
        return rnn
    return (nn.LSTM if kind == "lstm" else nn.GRU)(2, hidden).double()


@pytest.mark.parametrize("kind", ["tanh", "relu", "lstm", "gru"])
def test_the_exponents_gradient_matches_finite_differences(kind: str) -> None:
    """The whole window (steps, analytic Jacobian products, a QR per step) differentiated
    by autograd equals central finite differences with respect to every weight."""
    module = _module(kind, 3, seed=1)
    inputs = torch.randn(6, 2, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    names = [name for name, _ in module.named_parameters()]
    values = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    size = ModuleDynamics(module).tangent_size
    basis = random_basis(2, size, 2, torch.Generator().manual_seed(3), torch.float64)

    def exponents(*weights: torch.Tensor) -> torch.Tensor:
        parameters = dict(zip(names, weights, strict=True))
        bound = _module(kind, 3, seed=1)  # the module's layout, with these tensors as weights
        for name in names:  # as torch.func.functional_call swaps them
            bound._parameters[name] = parameters[name]
        dynamics = ModuleDynamics(bound)
        state = torch.zeros(2, dynamics.state_size, dtype=torch.float64)
        return differentiable_exponents(dynamics, inputs, state, basis)

    assert torch.autograd.gradcheck(exponents, tuple(values), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_the_flossing_gradient_of_a_scaled_rotation_has_its_closed_form() -> None:
    """``W_hh = a Q`` (``Q`` orthogonal), no input, no bias: the state stays 0, every step's
    Jacobian is ``a Q``, all ``N`` exponents are ``ln a``, and the gradient of
    ``sum_i lambda_i^2`` is ``2 ln a grad ln|det W| = (2 ln a / a) Q``."""
    hidden, a = 8, 0.7
    rnn = nn.RNN(1, hidden, bias=False).double()
    q = torch.linalg.qr(torch.randn(hidden, hidden, generator=torch.Generator().manual_seed(4),
                                    dtype=torch.float64)).Q  # fmt: skip
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(a * q)
    dynamics = ModuleDynamics(rnn)
    inputs = torch.zeros(20, 3, 1, dtype=torch.float64)
    basis = random_basis(3, hidden, hidden, torch.Generator().manual_seed(5), torch.float64)
    exponents = differentiable_exponents(
        dynamics, inputs, torch.zeros(3, hidden, dtype=torch.float64), basis
    )
    np.testing.assert_allclose(exponents.detach().numpy(), math.log(a), rtol=1e-12)
    (exponents**2).sum(dim=-1).mean().backward()
    expected = 2 * math.log(a) / a * q
    np.testing.assert_allclose(rnn.weight_hh_l0.grad.numpy(), expected.numpy(), atol=1e-12)


@pytest.mark.parametrize("kind", ["tanh", "lstm"])
def test_the_exponents_agree_with_lyapunov_spectrum_on_the_same_weights(kind: str) -> None:
    """Over a long window of the same drive the differentiable estimate (one trajectory
    from the zero state, its own basis) lands within three standard errors of what
    ``lyapunov_spectrum`` gives the same module, for each of the leading four."""
    from rnngrad import lyapunov_spectrum

    module = _module(kind, 12, seed=6)
    if kind == "tanh":
        with torch.no_grad():
            module.weight_hh_l0.mul_(4.0)  # a chaotic network: a positive exponent
    warmup, steps = 500, 3000
    drive = torch.randn(warmup + steps, 2, generator=torch.Generator().manual_seed(7),
                        dtype=torch.float64)  # fmt: skip
    reference = lyapunov_spectrum(module, steps=steps, warmup=warmup, k=4, batch=4,
                                  inputs=drive, progress=False)  # fmt: skip
    dynamics = ModuleDynamics(module)
    state = torch.zeros(1, dynamics.state_size, dtype=torch.float64)
    basis = random_basis(1, dynamics.tangent_size, 4, torch.Generator().manual_seed(8),
                         torch.float64)  # fmt: skip
    with torch.no_grad():
        estimate = differentiable_exponents(dynamics, drive.unsqueeze(1), state, basis)[0]
    # the reference's 95% interval is of a mean over 4 trajectories; one trajectory's
    # estimate spreads about twice as far: 3 sigma of it, and 0.01 for the transient
    half = 2 * 3.0 / 1.96 * np.asarray(reference.ci95)
    difference = np.abs(estimate.numpy() - np.asarray(reference.exponents))
    assert np.all(difference <= half + 0.01), (estimate, reference.exponents, half)


def test_bad_windows_and_bases_are_refused_in_one_line() -> None:
    from rnngrad.errors import InvalidInputError

    dynamics = ModuleDynamics(nn.RNN(2, 4).double())
    state = torch.zeros(1, 4, dtype=torch.float64)
    basis = random_basis(1, 4, 2, torch.Generator().manual_seed(0), torch.float64)
    with pytest.raises(InvalidInputError, match="inputs must be"):
        differentiable_exponents(dynamics, torch.zeros(0, 1, 2, dtype=torch.float64), state, basis)
    with pytest.raises(InvalidInputError, match="basis must be"):
        differentiable_exponents(dynamics, torch.zeros(3, 2, 2, dtype=torch.float64), state, basis)
