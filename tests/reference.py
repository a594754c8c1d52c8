"""Independent references: torch.autograd in float64 and finite differences.

These are second implementations on purpose; they live in the tests only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "identity": lambda z: z,
}


def scalar_rnn_autograd(
    x: list[float] | np.ndarray,
    a: float,
    b: float,
    c: float,
    d: float,
    e: float,
    h0: float,
    activation: str,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """h_1..h_T, y, dy/dh_k (one backward with retain_grad), dh_t/dh_{t-1} (autograd)."""
    phi = TORCH_ACTIVATIONS[activation]
    inputs = [float(v) for v in np.asarray(x, dtype=np.float64)]
    h = torch.tensor(h0, dtype=torch.float64, requires_grad=True)
    states = []
    for value in inputs:
        h = phi(a * h + b * value + c)
        h.retain_grad()
        states.append(h)
    y = d * states[-1] + e
    y.backward()
    grads = np.array([float(s.grad) if s.grad is not None else 0.0 for s in states])
    factors = []
    for t in range(1, len(states)):
        prev = states[t - 1].detach().requires_grad_(True)
        nxt = phi(a * prev + b * inputs[t] + c)
        (grad,) = torch.autograd.grad(nxt, prev)
        factors.append(float(grad))
    hs = np.array([float(s.detach()) for s in states])
    return hs, float(y.detach()), grads, np.array(factors)


def central_difference(function: Callable[[float], float], point: float, step: float) -> float:
    """Richardson-extrapolated central difference: error O(step**4)."""

    def diff(s: float) -> float:
        return (function(point + s) - function(point - s)) / (2 * s)

    return (4 * diff(step / 2) - diff(step)) / 3


def relative_error(value: np.ndarray | float, reference: np.ndarray | float) -> float:
    value = np.asarray(value, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(float(np.max(np.abs(reference))), 1e-300)
    return float(np.max(np.abs(value - reference)) / scale)


def diagonal_log_moduli_autograd(
    layer: torch.nn.Module, inputs: torch.Tensor, h0: torch.Tensor
) -> np.ndarray:
    """``ln|dh_t/dh_{t-1}|`` ``(T, B, N)`` of every mode of a diagonal recurrence, step
    by step: the diagonal of the Jacobian of the layer's own ``step`` by autograd, along
    the trajectory its ``step`` makes (independent of its scan and ``state_jacobian``)."""
    rows, state = [], h0
    for x in inputs:
        jacobian = torch.func.vmap(torch.func.jacrev(layer.step, argnums=1))(x, state)
        rows.append(torch.diagonal(jacobian, dim1=-2, dim2=-1).abs().log())
        state = layer.step(x, state)
    return torch.stack(rows).detach().numpy()
