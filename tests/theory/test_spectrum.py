"""Eigen- and singular-value analysis of W_hh against closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnngrad import (
    InvalidInputError,
    NonFiniteInputError,
    ShapeError,
    example_matrix,
    recurrent_spectrum,
    transient_growth,
)
from rnngrad.verdict import spectrum_verdict


def brute_force_power_norms(W: np.ndarray, steps: int) -> np.ndarray:
    """||W^k||_2 for k = 1..steps by explicit matrix powers (no renormalisation)."""
    return np.array([np.linalg.norm(np.linalg.matrix_power(W, k), 2) for k in range(1, steps + 1)])


def test_symmetric_matrix_with_known_spectrum() -> None:
    """W = Q diag(d) Q^T has eigenvalues d and singular values |d|."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    d = np.array([0.7, -0.95, 0.2, 0.5, -0.1])
    result = recurrent_spectrum(q @ np.diag(d) @ q.T)
    np.testing.assert_allclose(result.eigenvalues.real, [-0.95, 0.7, 0.5, 0.2, -0.1], atol=1e-13)
    np.testing.assert_allclose(result.eigenvalues.imag, 0.0, atol=1e-13)
    np.testing.assert_allclose(result.singular_values, [0.95, 0.7, 0.5, 0.2, 0.1], atol=1e-13)
    assert result.spectral_radius == pytest.approx(0.95)
    assert result.norm2 == pytest.approx(0.95)
    assert result.diagonalizable
    assert result.eigvec_condition == pytest.approx(1.0)
    assert result.verdict.label == "vanishing"
    assert result.verdict.singular_value_label == "vanishing"
    assert result.verdict.disagreement == ""


def test_rotation_has_complex_eigenvalues_on_the_unit_circle() -> None:
    theta = 0.3
    rotation = 1.2 * np.array(
        [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
    )
    result = recurrent_spectrum(rotation)
    np.testing.assert_allclose(result.eigenvalues.real, 1.2 * math.cos(theta), atol=1e-14)
    np.testing.assert_allclose(
        sorted(result.eigenvalues.imag), [-1.2 * math.sin(theta), 1.2 * math.sin(theta)]
    )
    assert result.spectral_radius == pytest.approx(1.2)
    assert result.verdict.label == "exploding"
    assert not result.transient.certified  # rho > 1: ||W^k|| never drops below 1


def test_orthogonal_example_is_normal() -> None:
    W = example_matrix("orthogonal", hidden=32, radius=0.8, seed=1)
    result = recurrent_spectrum(W)
    np.testing.assert_allclose(np.abs(result.eigenvalues), 0.8, rtol=1e-12)
    np.testing.assert_allclose(result.singular_values, 0.8, rtol=1e-12)
    assert result.eigvec_condition == pytest.approx(1.0, rel=1e-8)
    assert result.transient.max_growth == pytest.approx(0.8)
    assert result.transient.peak_step == 1


def test_orthogonal_at_radius_one_is_neither() -> None:
    result = recurrent_spectrum(example_matrix("orthogonal", hidden=16, radius=1.0, seed=2))
    assert result.verdict.label == "neither"


def test_random_example_has_the_requested_radius() -> None:
    W = example_matrix("random", hidden=40, radius=1.3, seed=3)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.3, rel=1e-12)


def test_nonnormal_example_fools_the_eigenvalue_criterion() -> None:
    """rho = 0.9 < 1, yet ||W^k|| grows by three orders of magnitude first: flagged."""
    W = example_matrix("nonnormal", hidden=64, radius=0.9, seed=0)
    result = recurrent_spectrum(W)
    # Computed eigenvalues of a non-normal matrix move by up to cond(V) * eps (Bauer-Fike).
    tolerance = result.eigvec_condition * np.finfo(float).eps
    assert tolerance < 1e-2
    np.testing.assert_allclose(
        np.sort(result.eigenvalues.real), np.linspace(-0.9, 0.9, 64), atol=tolerance
    )
    assert result.spectral_radius == pytest.approx(0.9, abs=tolerance)
    assert result.transient.max_growth > 1e3
    assert result.transient.certified
    assert result.verdict.eigenvalue_label == "vanishing"
    assert result.verdict.singular_value_label == "inconclusive"
    assert result.verdict.transient_flag
    assert "does not guarantee" in result.verdict.disagreement
    brute = brute_force_power_norms(W, result.transient.peak_step + 20)
    assert result.transient.max_growth == pytest.approx(brute.max(), rel=1e-9)
    assert result.transient.peak_step == int(np.argmax(brute)) + 1


def test_jordan_block_is_not_diagonalizable() -> None:
    """[[l, 1], [0, l]]: W^k = [[l^k, k l^(k-1)], [0, l^k]], one eigenvector."""
    lam = 0.9
    W = np.array([[lam, 1.0], [0.0, lam]])
    result = recurrent_spectrum(W)
    assert not result.diagonalizable
    norms = 10.0**result.transient.log10_norms
    for k, value in enumerate(norms, start=1):
        power = np.array([[lam**k, k * lam ** (k - 1)], [0.0, lam**k]])
        assert value == pytest.approx(np.linalg.norm(power, 2), rel=1e-12)


@given(
    seed=st.integers(0, 10_000),
    size=st.integers(1, 8),
    radius=st.floats(0.05, 0.97),
    kind=st.sampled_from(["random", "nonnormal"]),
)
def test_transient_growth_is_the_true_maximum(
    seed: int, size: int, radius: float, kind: str
) -> None:
    """The certified peak equals the brute-force maximum over many more powers."""
    W = example_matrix(kind, hidden=size, radius=radius, seed=seed)  # type: ignore[arg-type]
    growth = transient_growth(W)
    assert growth.certified
    brute = brute_force_power_norms(W, max(len(growth.log10_norms) * 3, 50))
    assert growth.max_growth == pytest.approx(brute.max(), rel=1e-9)
    np.testing.assert_allclose(
        10.0**growth.log10_norms, brute[: len(growth.log10_norms)], rtol=1e-9
    )


def test_transient_growth_never_overflows() -> None:
    """rho = 10: ||W^k|| = 10^k goes past float64 yet its log10 stays exact."""
    growth = transient_growth(10.0 * np.eye(3), max_steps=400)
    np.testing.assert_allclose(growth.log10_norms, np.arange(1, 401), rtol=1e-12)
    assert math.isinf(growth.max_growth)
    assert growth.log10_max_growth == pytest.approx(400.0)


def test_nilpotent_matrix() -> None:
    growth = transient_growth(np.array([[0.0, 5.0], [0.0, 0.0]]))
    assert growth.certified
    assert growth.max_growth == pytest.approx(5.0)
    assert np.isneginf(growth.log10_norms[-1])


def test_sigmoid_bound_decides_against_the_eigenvalues() -> None:
    """rho = 2 but sigma_max * 1/4 = 0.5 < 1: vanishing is guaranteed."""
    result = recurrent_spectrum(np.diag([2.0, 1.0]), activation="sigmoid")
    assert result.verdict.eigenvalue_label == "exploding"
    assert result.verdict.label == "vanishing"
    assert "derivative bound decides" in result.verdict.disagreement


def test_verdict_rule_thresholds() -> None:
    assert spectrum_verdict(1.0 + 1e-12, 1.0, 1.0, 1.0).eigenvalue_label == "neither"
    assert spectrum_verdict(1.01, 1.5, 1.0, 1.5).label == "exploding"
    assert not spectrum_verdict(0.9, 1.5, 1.0, 9.0).transient_flag
    assert spectrum_verdict(0.9, 1.5, 1.0, 11.0).transient_flag


@pytest.mark.parametrize(
    ("W", "error"),
    [
        (np.zeros((2, 3)), ShapeError),
        (np.zeros(4), ShapeError),
        (np.zeros((0, 0)), ShapeError),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), NonFiniteInputError),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), NonFiniteInputError),
        (np.array([["a", "b"], ["c", "d"]]), InvalidInputError),
        (np.eye(2) * 1j, InvalidInputError),
    ],
)
def test_bad_matrices(W: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error):
        recurrent_spectrum(W)


def test_bad_example() -> None:
    with pytest.raises(InvalidInputError):
        example_matrix("circulant", hidden=4)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        example_matrix("random", hidden=0)


def test_huge_entries_do_not_overflow() -> None:
    growth = transient_growth(np.array([[0.0, 1e200], [0.0, 0.0]]))
    assert growth.log10_norms[0] == pytest.approx(200.0)
    assert growth.certified
