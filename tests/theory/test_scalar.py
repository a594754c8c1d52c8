"""The scalar RNN's chain rule against autograd, finite differences and hand formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnngrad import (
    NonFiniteInputError,
    ShapeError,
    UnknownActivationError,
    get_activation,
    scalar_chain_rule,
    scalar_inputs,
    scalar_phase_diagram,
)
from rnngrad.errors import InvalidInputError
from tests.reference import central_difference, relative_error, scalar_rnn_autograd

ACTIVATIONS = ["tanh", "sigmoid", "relu", "identity"]


def test_textbook_example_equals_its_hand_formula() -> None:
    """dy/dh_1 = d * a*tanh'(a h_1 + b x_2 + c) * a*tanh'(a h_2 + b x_3 + c)."""
    a, b, c, d = 0.5, 1.0, 0.0, 1.0
    x = [1.0, 0.5, -0.3]
    h1 = math.tanh(a * 0.0 + b * x[0] + c)
    h2 = math.tanh(a * h1 + b * x[1] + c)
    tanh_prime = lambda z: 1.0 - math.tanh(z) ** 2  # noqa: E731
    expected = d * a * tanh_prime(a * h1 + b * x[1] + c) * a * tanh_prime(a * h2 + b * x[2] + c)
    result = scalar_chain_rule()  # the defaults are the textbook example
    assert result.steps == 3
    assert result.dy_dh[0] == pytest.approx(expected, rel=1e-14)
    assert result.dy_dh[2] == d
    assert result.factors[0] * result.factors[1] * d == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(result.bound, [d * a**2, d * a, d])


CASES = [
    # (x, a, b, c, d, e, h0)
    ([0.3, -1.2, 0.8, 0.1, 2.0, -0.7], 0.9, 0.7, 0.1, 1.3, 0.2, 0.4),
    ([1.0, 0.5, -0.3], -1.4, 1.1, -0.2, -0.8, 0.0, -0.5),
    (list(np.linspace(-1, 1, 25)), 1.2, 0.4, 0.3, 0.6, 1.0, 0.2),
]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_autograd(activation: str, case: tuple) -> None:
    """h, y, every dy/dh_k and every factor equal torch.autograd in float64 to 1e-8."""
    x, a, b, c, d, e, h0 = case
    result = scalar_chain_rule(x, a=a, b=b, c=c, d=d, e=e, h0=h0, activation=activation)
    hs, y, grads, factors = scalar_rnn_autograd(x, a, b, c, d, e, h0, activation)
    assert relative_error(result.h, hs) <= 1e-12
    assert result.y == pytest.approx(y, rel=1e-12)
    for ours, reference in zip(result.dy_dh, grads, strict=True):
        assert ours == pytest.approx(reference, rel=1e-8, abs=0.0)
    for ours, reference in zip(result.factors, factors, strict=True):
        assert ours == pytest.approx(reference, rel=1e-8, abs=0.0)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("case", CASES[:2])
def test_gradients_match_finite_differences(activation: str, case: tuple) -> None:
    """dy/dh_k equals a central difference of y in h_k, rerunning steps k+1..T."""
    x, a, b, c, d, e, h0 = case
    act = get_activation(activation)
    result = scalar_chain_rule(x, a=a, b=b, c=c, d=d, e=e, h0=h0, activation=activation)
    for k in range(1, len(x) + 1):

        def y_of(h_k: float, k: int = k) -> float:
            h = h_k
            for t in range(k, len(x)):  # steps k+1..T, 0-based input index t
                h = float(act.function(np.array(a * h + b * x[t] + c)))
            return d * h + e

        numeric = central_difference(y_of, float(result.h[k - 1]), 1e-3)
        assert result.dy_dh[k - 1] == pytest.approx(numeric, rel=1e-8)


finite = st.floats(-3.0, 3.0, allow_nan=False)


@given(
    a=st.floats(-3.0, 3.0),
    b=finite,
    c=finite,
    d=st.floats(-5.0, 5.0),
    h0=finite,
    activation=st.sampled_from(ACTIVATIONS),
    x=st.lists(finite, min_size=1, max_size=60),
)
def test_exact_gradient_never_exceeds_the_bound(
    a: float, b: float, c: float, d: float, h0: float, activation: str, x: list[float]
) -> None:
    """|dy/dh_k| <= |d| (|a| gamma)^(T-k) for every k, in log space."""
    result = scalar_chain_rule(x, a=a, b=b, c=c, d=d, h0=h0, activation=activation)
    exact = result.log10_abs_dy_dh
    bound = result.log10_bound
    finite_bound = np.isfinite(bound)
    # Where the bound is an exact zero (a = 0 or d = 0) so is the gradient.
    assert np.all(np.isneginf(exact[~finite_bound]))
    slack = 1e-12 * (1.0 + np.abs(bound[finite_bound]))
    assert np.all(exact[finite_bound] <= bound[finite_bound] + slack)


@given(
    a=st.floats(-2.0, 2.0).filter(lambda v: abs(v) > 1e-3),
    c=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**16),
    steps=st.integers(2, 300),
)
def test_log_space_matches_a_direct_product_where_it_fits(
    a: float, c: float, seed: int, steps: int
) -> None:
    """log10|dy/dh_k| equals log10 of the plainly multiplied factors a*(1 - h_t^2)."""
    x = scalar_inputs(steps, seed)
    result = scalar_chain_rule(x, a=a, c=c, activation="tanh")
    z = result.pre_activations
    factors = a * (1.0 - np.tanh(z[1:]) ** 2)
    log_factors = np.log10(np.abs(factors))
    direct = np.concatenate([np.cumsum(log_factors[::-1])[::-1], [0.0]])
    fits = direct > -250  # where 1 - tanh^2 has not lost all its digits
    np.testing.assert_allclose(result.log10_abs_dy_dh[fits], direct[fits], rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(result.log10_abs_dy_dh))


@pytest.mark.parametrize("a", [0.5, -0.5, 1.5, -1.5])
def test_one_hundred_thousand_steps_stay_finite(a: float) -> None:
    """T = 100,000: log10|dy/dh_k| is finite everywhere and equals an independent sum."""
    steps = 100_000
    x = scalar_inputs(steps, 7)
    result = scalar_chain_rule(x, a=a)
    logs = result.log10_abs_dy_dh
    assert logs.shape == (steps,)
    assert np.all(np.isfinite(logs))
    assert logs[0] < -1000  # far below the smallest float, yet finite
    # Independent route: each factor from h_t = tanh(z_t) via math, summed with fsum.
    z = result.pre_activations
    log_sech2 = [2 * (math.log(2) - abs(v) - math.log1p(math.exp(-2 * abs(v)))) for v in z[1:]]
    total = math.fsum(math.log10(abs(a)) + v / math.log(10) for v in log_sech2)
    assert logs[0] == pytest.approx(total, rel=1e-10)
    # Exact values that under/overflow are not presented as numbers.
    assert math.isnan(result.dy_dh[0])


def test_identity_activation_gives_powers_of_a() -> None:
    """With phi = identity, dy/dh_k = d a^(T-k) exactly, equal to the bound."""
    result = scalar_chain_rule(np.zeros(50), a=1.5, d=2.0, activation="identity")
    k = np.arange(1, 51)
    expected = math.log10(2.0) + (50 - k) * math.log10(1.5)
    np.testing.assert_allclose(result.log10_abs_dy_dh, expected, rtol=1e-13)
    np.testing.assert_allclose(result.log10_bound, expected, rtol=1e-13)
    assert result.verdict.label == "exploding"


def test_negative_a_alternates_sign() -> None:
    result = scalar_chain_rule(np.zeros(5), a=-0.5, activation="identity")
    np.testing.assert_allclose(result.dy_dh, [0.0625, -0.125, 0.25, -0.5, 1.0])


def test_dead_relu_gives_exact_zero() -> None:
    """A relu that is off passes exactly nothing: log10 is -inf, the value 0."""
    result = scalar_chain_rule([1.0, -5.0, 1.0], a=0.5, activation="relu")
    assert result.dy_dh[0] == 0.0
    assert result.dy_dh[1] == 0.5  # dh_3/dh_2 = a * relu'(z_3) with z_3 > 0
    assert np.isneginf(result.log10_abs_dy_dh[0])
    assert result.verdict.label == "vanishing"


def test_identity_overflow_is_reported_not_hidden() -> None:
    result = scalar_chain_rule(np.ones(2000), a=1.5, activation="identity")
    assert result.overflow_step is not None
    assert np.all(np.isfinite(result.log10_abs_dy_dh))


@pytest.mark.parametrize(
    ("a", "activation", "label"),
    [(0.5, "tanh", "vanishing"), (1.0, "identity", "neither"), (1.5, "identity", "exploding")],
)
def test_verdict(a: float, activation: str, label: str) -> None:
    result = scalar_chain_rule(np.zeros(30), a=a, activation=activation)
    assert result.verdict.label == label
    assert "1.01" in result.verdict.rule


def test_one_step_has_no_recurrence() -> None:
    result = scalar_chain_rule([0.4], a=3.0)
    assert result.factors.shape == (0,)
    assert result.verdict.label == "neither"
    assert result.dy_dh[0] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"x": []}, ShapeError),
        ({"x": [[1.0, 2.0]]}, ShapeError),
        ({"x": [1.0, float("nan")]}, NonFiniteInputError),
        ({"x": [1.0], "a": float("inf")}, NonFiniteInputError),
        ({"x": [1.0], "activation": "swish"}, UnknownActivationError),
    ],
)
def test_bad_input(kwargs: dict, error: type[Exception]) -> None:
    x = kwargs.pop("x")
    with pytest.raises(error):
        scalar_chain_rule(x, **kwargs)


def test_scalar_inputs() -> None:
    assert np.all(scalar_inputs(4) == 0)
    np.testing.assert_array_equal(scalar_inputs(4, 1), np.random.default_rng(1).standard_normal(4))
    with pytest.raises(InvalidInputError):
        scalar_inputs(0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_phase_diagram_matches_single_runs(activation: str) -> None:
    """Each (a, T) cell equals scalar_chain_rule on the first T inputs."""
    a_values = np.array([-1.7, -0.4, 0.0, 0.3, 0.95, 1.6])
    lengths = np.array([1, 2, 7, 30, 3])
    x = scalar_inputs(30, 3)
    diagram = scalar_phase_diagram(a_values, lengths, x=x, c=0.1, d=1.5, activation=activation)
    assert diagram.log10_abs_grad.shape == (6, 5)
    for i, a in enumerate(a_values):
        for j, steps in enumerate(lengths):
            single = scalar_chain_rule(x[:steps], a=a, c=0.1, d=1.5, activation=activation)
            assert diagram.log10_abs_grad[i, j] == pytest.approx(
                single.log10_abs_dy_dh[0], rel=1e-12, abs=1e-12
            ) or (
                np.isneginf(diagram.log10_abs_grad[i, j]) and np.isneginf(single.log10_abs_dy_dh[0])
            )
            assert diagram.log10_bound[i, j] == pytest.approx(single.log10_bound[0], abs=1e-12) or (
                np.isneginf(diagram.log10_bound[i, j]) and np.isneginf(single.log10_bound[0])
            )
            assert diagram.labels[i, j] == single.verdict.label


def test_phase_diagram_bad_input() -> None:
    with pytest.raises(ShapeError):
        scalar_phase_diagram([], [1, 2])
    with pytest.raises(InvalidInputError):
        scalar_phase_diagram([0.5], [0, 2])
    with pytest.raises(ShapeError):
        scalar_phase_diagram([0.5], [10], x=np.zeros(3))


def test_a_phase_diagram_beyond_the_memory_budget_is_refused_first() -> None:
    """Regression: a 100000 x 100000 phase diagram was not checked against the memory
    budget (numpy refused 74.5 GiB; a larger machine would have tried)."""
    from rnngrad.limits import ResourceError

    with pytest.raises(ResourceError, match="phase diagram of 100000 x 100000"):
        scalar_phase_diagram(np.linspace(-2, 2, 100_000), np.arange(1, 100_001))
