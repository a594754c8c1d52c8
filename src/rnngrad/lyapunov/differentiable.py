r"""The leading Lyapunov exponents as a differentiable function of the weights.

Gradient flossing (Engelken 2023) trains on the exponents themselves: it adds
``sum_i lambda_i^2`` (``i = 1..k``) to the loss, so that backpropagation through the
QR method pushes them towards zero. Over a window of ``T`` steps of the model's own
trajectory, from a basis ``Q_0`` ``(n, k)`` with orthonormal columns,

.. math::

    \tilde Q_t = J_t Q_{t-1}, \qquad \tilde Q_t = Q_t R_t, \qquad
    \lambda_i = \frac{1}{T} \sum_{t=1}^{T} \ln |(R_t)_{ii}|,

the finite-time estimate of the QR method (Benettin et al. 1980) that
:func:`rnngrad.lyapunov_spectrum` computes without gradients. Here every step keeps
its graph: ``J_t Q`` is :meth:`~rnngrad.lyapunov.dynamics.Dynamics.jacobian_product`
(the analytic Jacobian-vector products of the built-in cells, ``J_t = diag(1 - h_t^2)
W_hh`` for the tanh network, never formed), and ``torch.linalg.qr`` is
differentiable (its backward solves with ``R``, so it needs ``|R_ii| > 0``: a
direction that the step annihilates, as a ReLU network does when more than ``n - k``
of its units are silent, has ``lambda = -inf`` and no gradient; its ``|R_ii|`` is
floored at ``1e-30`` in the value, and the gradient comes out non-finite, which the
lab's training counts as a skipped step).

A factorisation at every step keeps the basis well conditioned, which the backward
pass needs more than the forward one does.
"""

from __future__ import annotations

import torch

from rnngrad.errors import InvalidInputError
from rnngrad.lyapunov.dynamics import Dynamics

__all__ = ["differentiable_exponents", "random_basis"]

_FLOOR = 1e-30  # |R_ii| below this: a direction the step annihilates


def random_basis(
    batch: int, size: int, k: int, generator: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    """``(B, size, k)`` bases with orthonormal columns, drawn from ``generator`` (CPU)."""
    gaussian = torch.randn(batch, size, k, generator=generator, dtype=torch.float64)
    basis: torch.Tensor = torch.linalg.qr(gaussian).Q
    return basis.to(dtype)


def differentiable_exponents(
    dynamics: Dynamics,
    inputs: torch.Tensor,
    state: torch.Tensor,
    basis: torch.Tensor,
) -> torch.Tensor:
    """The ``k`` leading finite-time Lyapunov exponents along each trajectory, with
    their graph back to the parameters of ``dynamics``.

    Args:
        dynamics: the recurrent map (:class:`~rnngrad.lyapunov.dynamics.ModuleDynamics`
            of an ``nn.RNN``/``nn.LSTM``/``nn.GRU``, or a :class:`rnngrad.CellDynamics`).
        inputs: ``(T, B, D)``, the window that drives it.
        state: ``(B, n)``, the state before the window.
        basis: ``(B, n_tangent, k)`` with orthonormal columns (:func:`random_basis`).

    Returns:
        ``(B, k)``: ``lambda_i`` in nats per step, largest first along each trajectory.

    Raises:
        InvalidInputError: an empty window, ``k`` beyond the tangent space, shapes
            that do not match.
    """
    if inputs.dim() != 3 or inputs.shape[0] < 1:
        raise InvalidInputError(f"inputs must be (T >= 1, B, D), got {tuple(inputs.shape)}")
    batch, size = inputs.shape[1], dynamics.tangent_size
    if basis.dim() != 3 or basis.shape[:2] != (batch, size):
        raise InvalidInputError(
            f"basis must be ({batch}, {size}, k) for this system and window, got "
            f"{tuple(basis.shape)}"
        )
    if not 1 <= basis.shape[2] <= size:
        raise InvalidInputError(f"k must be in 1..{size}, got {basis.shape[2]}")
    logs = torch.zeros(batch, basis.shape[2], dtype=basis.dtype, device=basis.device)
    q = basis
    for x in inputs:
        state, cache = dynamics.step(state, x)
        q, r = torch.linalg.qr(dynamics.jacobian_product(cache, q))
        logs = logs + r.diagonal(dim1=-2, dim2=-1).abs().clamp_min(_FLOOR).log()
    return logs / inputs.shape[0]
