"""Elman Jacobian products and gradients against autograd, finite differences, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd.functional import jacobian

from rnngrad import (
    NonFiniteInputError,
    NumericalError,
    ShapeError,
    elman_forward,
    elman_jacobian_products,
    example_matrix,
    get_activation,
)
from tests.reference import TORCH_ACTIVATIONS, central_difference

ACTIVATIONS = ["tanh", "sigmoid", "relu", "identity"]


def make_network(seed: int, hidden: int = 5, inputs: int = 3, steps: int = 9, scale: float = 0.9):
    rng = np.random.default_rng(seed)
    return {
        "W_hh": rng.standard_normal((hidden, hidden)) * scale / math.sqrt(hidden),
        "W_xh": rng.standard_normal((hidden, inputs)),
        "bias": rng.standard_normal(hidden) * 0.3,
        "h0": rng.standard_normal(hidden) * 0.5,
        "x": rng.standard_normal((steps, inputs)),
    }


def torch_states(net: dict, activation: str) -> list[torch.Tensor]:
    """h_1..h_T in float64 with retain_grad, h_0 a leaf."""
    phi = TORCH_ACTIVATIONS[activation]
    W = torch.tensor(net["W_hh"])
    U = torch.tensor(net["W_xh"])
    b = torch.tensor(net["bias"])
    h = torch.tensor(net["h0"], requires_grad=True)
    states = []
    for x_t in torch.tensor(net["x"]):
        h = phi(W @ h + U @ x_t + b)
        h.retain_grad()
        states.append(h)
    return states


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_product_norms_match_autograd_jacobians(activation: str, seed: int) -> None:
    """||dh_T/dh_k||_2 equals the norm of torch.autograd's Jacobian of steps k+1..T."""
    net = make_network(seed, scale=1.4)
    result = elman_jacobian_products(**net, activation=activation)
    states = torch_states(net, activation)
    phi = TORCH_ACTIVATIONS[activation]
    W, U, b = (torch.tensor(net[k]) for k in ("W_hh", "W_xh", "bias"))
    xs = torch.tensor(net["x"])
    steps = len(states)
    for k in range(1, steps + 1):

        def rest(h_k: torch.Tensor, k: int = k) -> torch.Tensor:
            h = h_k
            for t in range(k, steps):
                h = phi(W @ h + U @ xs[t] + b)
            return h

        J = jacobian(rest, states[k - 1].detach())
        norm = torch.linalg.matrix_norm(J, 2).item()
        if norm == 0.0:
            assert np.isneginf(result.log10_norm[k - 1])
        else:
            assert 10 ** result.log10_norm[k - 1] == pytest.approx(norm, rel=1e-10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("per_step", [False, True])
def test_gradients_match_retain_grad(activation: str, per_step: bool) -> None:
    """dL/dh_k equals torch's retain_grad gradient to 1e-8 relative, final or per-step loss."""
    net = make_network(3, steps=12, scale=1.2)
    rng = np.random.default_rng(11)
    weights = rng.standard_normal((12, 5)) if per_step else rng.standard_normal(5)
    result = elman_jacobian_products(**net, activation=activation, loss_grad=weights)
    states = torch_states(net, activation)
    if per_step:
        loss = sum((torch.tensor(weights[t]) * s).sum() for t, s in enumerate(states))
    else:
        loss = (torch.tensor(weights) * states[-1]).sum()
    loss.backward()
    reference = np.stack([s.grad.numpy() for s in states])  # type: ignore[union-attr]
    grad = result.grad
    assert grad is not None
    for k in range(12):
        scale = np.linalg.norm(reference[k])
        assert np.linalg.norm(grad[k] - reference[k]) <= 1e-8 * scale + 1e-300
        if scale > 0:
            assert 10 ** result.log10_grad_norm[k] == pytest.approx(scale, rel=1e-10)  # type: ignore[index]


def test_gradients_match_finite_differences() -> None:
    """d/dh_k of L = g . h_T by central differences along each coordinate."""
    net = make_network(5, steps=6)
    g = np.array([0.3, -1.0, 0.5, 2.0, -0.4])
    result = elman_jacobian_products(**net, loss_grad=g)
    act = get_activation("tanh")
    drive = net["x"] @ net["W_xh"].T + net["bias"]
    for k in range(1, 7):
        h_k = result.trajectory.h[k - 1]
        for i in range(5):

            def loss(value: float, k: int = k, i: int = i, h_k: np.ndarray = h_k) -> float:
                h = h_k.copy()
                h[i] = value
                for t in range(k, 6):
                    h = act.function(net["W_hh"] @ h + drive[t])
                return float(g @ h)

            numeric = central_difference(loss, float(h_k[i]), 1e-3)
            assert result.grad[k - 1, i] == pytest.approx(numeric, rel=1e-8, abs=1e-12)  # type: ignore[index]


@pytest.mark.parametrize("a", [0.5, 1.5])
def test_identity_with_scaled_orthogonal_gives_powers_of_a(a: float) -> None:
    """phi = identity, W = a Q: ||dh_T/dh_k||_2 = a^(T-k) exactly, even for T = 100,000."""
    steps, hidden = 100_000, 4
    Q = example_matrix("orthogonal", hidden=hidden, radius=1.0, seed=0)
    x = np.zeros((steps, hidden))
    result = elman_jacobian_products(a * Q, x, activation="identity", h0=np.zeros(hidden))
    k = np.arange(1, steps + 1)
    expected = (steps - k) * math.log10(a)
    assert np.all(np.isfinite(result.log10_norm))
    np.testing.assert_allclose(result.log10_norm, expected, rtol=1e-9, atol=1e-9)
    assert result.verdict.label == ("vanishing" if a < 1 else "exploding")


def test_tanh_over_one_hundred_thousand_steps_stays_finite() -> None:
    rng = np.random.default_rng(0)
    W = example_matrix("random", hidden=4, radius=1.5, seed=1)
    x = rng.standard_normal((100_000, 4))
    result = elman_jacobian_products(W, x, loss_grad=np.ones(4))
    assert np.all(np.isfinite(result.log10_norm))
    assert np.all(np.isfinite(result.log10_grad_norm))  # type: ignore[arg-type]
    assert result.log10_grad_norm[0] < -300  # type: ignore[index]


def test_diagonal_matrix_gives_per_unit_products() -> None:
    """W = diag(w): dh_T/dh_k is diagonal with entries prod_t w_i phi'(z_t,i)."""
    rng = np.random.default_rng(2)
    w = np.array([0.9, -1.3, 0.4])
    x = rng.standard_normal((40, 3))
    result = elman_jacobian_products(np.diag(w), x, activation="tanh")
    z = result.trajectory.pre_activations
    per_unit = np.log10(np.abs(w)) + np.log10(1.0 - np.tanh(z) ** 2)  # (T, N)
    for k in range(1, 41):
        products = per_unit[k:].sum(axis=0)  # steps k+1..T
        assert result.log10_norm[k - 1] == pytest.approx(products.max(), abs=1e-10)


def test_dead_relu_is_an_exact_zero() -> None:
    W = np.eye(2) * 0.5
    x = np.array([[1.0, 1.0], [-9.0, -9.0], [1.0, 1.0], [1.0, 1.0]])
    result = elman_jacobian_products(W, x, activation="relu", loss_grad=np.ones(2))
    assert np.isneginf(result.log10_norm[0])
    assert result.log10_norm[2] == pytest.approx(math.log10(0.5))
    assert result.grad[0].tolist() == [0.0, 0.0]  # type: ignore[index]
    assert result.verdict.label == "vanishing"


def test_saturation_and_horizon_are_reported() -> None:
    x = np.full((30, 2), 20.0)
    result = elman_jacobian_products(np.eye(2), x, loss_grad=np.ones(2))
    assert result.saturation.share == 1.0
    assert result.horizon == 1


def test_forward_matches_torch() -> None:
    net = make_network(4)
    states = torch_states(net, "tanh")
    trajectory = elman_forward(**net)
    np.testing.assert_allclose(
        trajectory.h, np.stack([s.detach().numpy() for s in states]), rtol=1e-13
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"x": np.zeros((0, 3))}, ShapeError),
        ({"W_xh": np.zeros((5, 2))}, ShapeError),
        ({"bias": np.zeros(4)}, ShapeError),
        ({"x": np.full((3, 3), np.nan)}, NonFiniteInputError),
        ({"loss_grad": np.zeros(7)}, ShapeError),
    ],
)
def test_bad_input(change: dict, error: type[Exception]) -> None:
    net = make_network(0)
    net.update(change)
    with pytest.raises(error):
        elman_jacobian_products(**net)


def test_overflowing_state_is_an_error() -> None:
    with pytest.raises(NumericalError, match="overflowed"):
        elman_forward(np.eye(2) * 10.0, np.ones((400, 2)), activation="identity")
