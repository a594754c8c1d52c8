r"""Scans of diagonal linear recurrences, forward and adjoint.

A diagonal linear recurrence

.. math:: h_t = a_t \odot h_{t-1} + b_t, \qquad t = 1..T,

(real or complex, ``a`` broadcastable against ``b``) is a prefix product of the
affine maps ``h -> a_t h + b_t``, whose composition is associative:
``(a_1, b_1) then (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2)``. :func:`linear_scan`
combines them in ``ceil(log2 T)`` vectorised rounds (Hillis & Steele 1986), so
the work per round is one elementwise product over the whole sequence instead
of ``T`` tiny sequential steps (Martin & Cundy 2018; Orvieto et al. 2023).

Positive recurrences (minGRU, minLSTM; Feng et al. 2024) are scanned in log
space by :func:`log_linear_scan`: with ``A_t = sum_{k<=t} ln a_k``,
``ln h_t = A_t + logcumsumexp_k(ln b_k - A_k)``, which neither under- nor
overflows for long sequences.

The adjoint: for a loss ``L`` whose *direct* gradients at the states are
``G_t`` (every path except the recurrence itself), the total gradients obey
``g_t = G_t + conj(a_{t+1}) g_{t+1}``: the same kind of recurrence, run
backwards (:func:`diagonal_adjoint`). For complex states the gradient is
PyTorch's convention (the conjugate Wirtinger derivative).
"""

from __future__ import annotations

import torch

__all__ = ["diagonal_adjoint", "linear_scan", "log_linear_scan"]


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` for ``t = 1..T``, time-major, in ``ceil(log2 T)`` rounds.

    Args:
        a: coefficients, broadcastable to ``b`` (``(T, ...)`` or constant ``(...)``).
        b: inputs ``(T, ...)``.
        h0: the initial state ``(...)``, zeros when omitted.

    Returns:
        ``(T, ...)``, differentiable in ``a``, ``b`` and ``h0``.
    """
    steps = b.shape[0]
    coefficients = torch.broadcast_to(a, b.shape) if a.dim() < b.dim() else a.expand_as(b)
    values = b
    if h0 is not None:
        values = torch.cat([(coefficients[0] * h0 + b[0]).unsqueeze(0), b[1:]], dim=0)
    shift = 1
    while shift < steps:
        # (a, b)_t <- (a_t a_{t-s}, a_t b_{t-s} + b_t) for t >= s; out of place for autograd
        values = torch.cat(
            [values[:shift], torch.addcmul(values[shift:], coefficients[shift:], values[:-shift])]
        )
        coefficients = torch.cat(
            [coefficients[:shift], coefficients[shift:] * coefficients[:-shift]]
        )
        shift *= 2
    return values


def log_linear_scan(
    log_a: torch.Tensor, log_b: torch.Tensor, log_h0: torch.Tensor | None = None
) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` for positive ``a``, ``b`` (and ``h0``), from their logs.

    Args:
        log_a, log_b: ``(T, ...)``.
        log_h0: ``(...)``, or ``None`` for ``h0 = 0``.

    Returns:
        ``h`` ``(T, ...)`` (not its log), differentiable.
    """
    cumulative = torch.cumsum(log_a, dim=0)
    terms = log_b - cumulative
    if log_h0 is not None:
        terms = torch.cat([log_h0.unsqueeze(0), terms], dim=0)
        return torch.exp(cumulative + torch.logcumsumexp(terms, dim=0)[1:])
    return torch.exp(cumulative + torch.logcumsumexp(terms, dim=0))


def diagonal_adjoint(direct: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Total gradients ``g_t = G_t + conj(a_{t+1}) g_{t+1}`` of a diagonal linear
    recurrence from the direct ones, by the same scan run backwards.

    Args:
        direct: ``G`` ``(T, ...)``.
        a: the forward coefficients ``a_t`` ``(T, ...)`` or a constant ``(...)``;
            for a nonlinear diagonal recurrence, its Jacobian ``dh_t/dh_{t-1}``.
    """
    coefficients = torch.broadcast_to(a, direct.shape) if a.dim() < direct.dim() else a
    coefficients = coefficients.conj() if coefficients.is_complex() else coefficients
    # Backwards in time, step t takes the coefficient of step t + 1 (none for the last).
    shifted = torch.cat([coefficients[1:], torch.zeros_like(coefficients[:1])]).flip(0)
    return linear_scan(shifted, direct.flip(0)).flip(0)
