"""Activation derivatives against torch.autograd and finite differences; saturation."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

from rnngrad import (
    Activation,
    InvalidInputError,
    NonFiniteInputError,
    ShapeError,
    UnknownActivationError,
    activation_names,
    get_activation,
    register_activation,
    saturation,
)
from rnngrad.theory.activations import _REGISTRY
from tests.reference import TORCH_ACTIVATIONS, central_difference, relative_error

BUILT_IN = ["tanh", "sigmoid", "relu", "identity"]
# Points away from relu's kink at 0, where a finite difference is meaningless.
POINTS = np.array([-7.5, -3.0, -1.2, -0.4, -0.05, 0.07, 0.3, 0.9, 2.5, 6.0])
# In saturation phi(z +- s) differ only in the last digits, so a finite difference
# cannot reach 1e-8 there; it is checked at moderate z, and mpmath covers the rest.
MODERATE = POINTS[np.abs(POINTS) <= 3.0]

MPMATH_DERIVATIVES = {
    "tanh": lambda z: mpmath.sech(z) ** 2,
    "sigmoid": lambda z: mpmath.exp(-z) / (1 + mpmath.exp(-z)) ** 2,
    "relu": lambda z: mpmath.mpf(1) if z > 0 else mpmath.mpf(0),
    "identity": lambda z: mpmath.mpf(1),
}


@pytest.mark.parametrize("name", BUILT_IN)
def test_function_matches_torch(name: str) -> None:
    act = get_activation(name)
    expected = TORCH_ACTIVATIONS[name](torch.tensor(POINTS, dtype=torch.float64)).numpy()
    assert relative_error(act.function(POINTS), expected) <= 1e-14


@pytest.mark.parametrize("name", BUILT_IN)
def test_derivative_matches_autograd(name: str) -> None:
    """phi'(z) equals torch.autograd's derivative in float64 to 1e-8 relative."""
    act = get_activation(name)
    z = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    TORCH_ACTIVATIONS[name](z).sum().backward()
    assert z.grad is not None
    for ours, reference in zip(act.derivative(POINTS), z.grad.numpy(), strict=True):
        assert ours == pytest.approx(reference, rel=1e-8, abs=0.0)


@pytest.mark.parametrize("name", BUILT_IN)
def test_derivative_matches_finite_differences(name: str) -> None:
    """phi'(z) equals a Richardson central difference to 1e-8 relative."""
    act = get_activation(name)
    for point in MODERATE:
        numeric = central_difference(lambda v: float(act.function(np.array(v))), point, 1e-3)
        assert act.derivative(np.array(point)) == pytest.approx(numeric, rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("name", BUILT_IN)
def test_derivative_and_its_log_match_50_digit_arithmetic(name: str) -> None:
    """phi' and ln phi' agree with mpmath at 50 digits, saturated points included."""
    act = get_activation(name)
    with mpmath.workdps(50):
        for point in [*POINTS, -30.0, 45.0]:
            exact = MPMATH_DERIVATIVES[name](mpmath.mpf(point))
            assert act.derivative(np.array(point)) == pytest.approx(float(exact), rel=1e-14)
            log_exact = float(mpmath.log(exact)) if exact > 0 else -math.inf
            assert float(act.log_derivative(np.array(point))) == pytest.approx(
                log_exact, rel=1e-14, abs=1e-15
            )


@pytest.mark.parametrize(
    ("name", "z", "expected"),
    [
        # ln sech^2(z) = 2 ln 2 - 2|z| - 2 ln(1 + e^{-2|z|}); at |z| = 400 the last term is 0
        ("tanh", 400.0, 2 * math.log(2) - 800.0),
        ("tanh", -400.0, 2 * math.log(2) - 800.0),
        # sigma'(z) = e^{-|z|} / (1 + e^{-|z|})^2
        ("sigmoid", 900.0, -900.0),
    ],
)
def test_log_derivative_stays_exact_where_the_derivative_underflows(
    name: str, z: float, expected: float
) -> None:
    """Far in saturation phi' is 0 in float64, yet its logarithm is exact."""
    act = get_activation(name)
    assert act.derivative(np.array(z)) == 0.0
    assert float(act.log_derivative(np.array(z))) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("name", "gamma", "where"),
    [("tanh", 1.0, 0.0), ("sigmoid", 0.25, 0.0), ("relu", 1.0, 1.0), ("identity", 1.0, -3.0)],
)
def test_gamma_is_the_supremum_and_is_reached(name: str, gamma: float, where: float) -> None:
    act = get_activation(name)
    grid = np.linspace(-20, 20, 400_001)
    assert act.gamma == gamma
    assert np.max(np.abs(act.derivative(grid))) <= gamma
    assert act.derivative(np.array(where)) == pytest.approx(gamma, rel=1e-15)


def test_relu_derivative_at_zero_follows_pytorch() -> None:
    z = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    torch.relu(z).backward()
    assert get_activation("relu").derivative(np.array(0.0)) == float(z.grad)  # type: ignore[arg-type]


def test_unknown_activation_names_the_choices() -> None:
    with pytest.raises(UnknownActivationError, match="tanh, sigmoid, relu, identity"):
        get_activation("softmax")


def test_register_a_new_activation() -> None:
    softsign = Activation(
        name="softsign_test",
        function=lambda z: z / (1 + np.abs(z)),
        derivative=lambda z: 1 / (1 + np.abs(z)) ** 2,
        log_derivative=lambda z: -2 * np.log1p(np.abs(z)),
        gamma=1.0,
        sup_at="z = 0",
    )
    try:
        register_activation(softsign)
        assert "softsign_test" in activation_names()
        assert get_activation("softsign_test") is softsign
        with pytest.raises(InvalidInputError, match="already registered"):
            register_activation(softsign)
    finally:
        _REGISTRY.pop("softsign_test", None)


def test_register_rejects_a_bad_gamma() -> None:
    bad = Activation("bad_gamma", np.tanh, np.tanh, np.tanh, gamma=float("nan"), sup_at="")
    with pytest.raises(InvalidInputError, match="gamma"):
        register_activation(bad)


def test_saturation_counts_units_below_the_threshold() -> None:
    """tanh'(z) < 0.1 exactly when |z| > artanh(sqrt(0.9)) = 1.8184..."""
    cut = math.atanh(math.sqrt(0.9))
    z = np.array([[0.0, cut + 1e-6, -cut - 1e-6, 1.0], [5.0, -0.2, 0.3, cut - 1e-6]])
    result = saturation(z, "tanh", threshold=0.1)
    assert result.share == pytest.approx(3 / 8)
    np.testing.assert_allclose(result.share_per_step, [2 / 4, 1 / 4])
    np.testing.assert_allclose(result.share_per_unit, [1 / 2, 1 / 2, 1 / 2, 0.0])


def test_saturation_is_relative_to_gamma_for_sigmoid() -> None:
    """sigmoid'(0) = gamma = 1/4 is not saturated at any threshold <= 1."""
    result = saturation(np.zeros((3, 2)), "sigmoid", threshold=1.0 - 1e-12)
    assert result.share == 0.0


def test_saturation_of_relu_counts_dead_units() -> None:
    z = np.array([[-1.0, 2.0], [0.0, 3.0]])
    assert saturation(z, "relu").share == pytest.approx(0.5)


def test_saturation_pools_batch_axes() -> None:
    z = np.zeros((2, 3, 4))
    z[1] = 10.0
    result = saturation(z, "tanh")
    assert result.share == pytest.approx(0.5)
    assert result.share_per_step.shape == (3,)
    assert result.share_per_unit.shape == (4,)


@pytest.mark.parametrize(
    ("z", "error"),
    [
        (np.zeros(3), ShapeError),
        (np.zeros((0, 3)), ShapeError),
        (np.array([[np.nan]]), NonFiniteInputError),
    ],
)
def test_saturation_rejects_bad_input(z: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error):
        saturation(z, "tanh")
