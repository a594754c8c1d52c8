r"""Scans of diagonal linear recurrences, forward and adjoint.

A diagonal linear recurrence

.. math:: h_t = a_t \odot h_{t-1} + b_t, \qquad t = 1..T,

(real or complex, ``a`` broadcastable against ``b``) is a prefix product of the
affine maps ``h -> a_t h + b_t``, whose composition is associative:
``(a_1, b_1) then (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2)``. :func:`linear_scan`
composes them chunk by chunk (a two-level scan: about ``2 sqrt(T)``
vectorised steps over the whole batch instead of ``T`` tiny ones; Blelloch 1990;
Martin & Cundy 2018; Orvieto et al. 2023).

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

import itertools
import math
from typing import Any

import torch

__all__ = ["diagonal_adjoint", "linear_scan", "log_linear_scan"]


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` for ``t = 1..T``, time-major, as a blocked scan whose
    backward is the adjoint scan (:func:`diagonal_adjoint`), not autograd's replay of the
    forward's many small operations.

    Args:
        a: coefficients ``(T, ...)``, or constant in time ``(...)`` (broadcast over ``b``).
        b: inputs ``(T, ...)``.
        h0: the initial state ``(...)``, zeros when omitted.

    Returns:
        ``(T, ...)``, differentiable in ``a``, ``b`` and ``h0`` (once; not twice).
    """
    start = torch.zeros_like(b[0]) if h0 is None else h0.expand_as(b[0]).to(b.dtype)
    result: torch.Tensor = _LinearScan.apply(a, b, start)  # type: ignore[no-untyped-call]
    return result


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to the shape of the tensor that was broadcast."""
    extra = grad.dim() - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=keep, keepdim=True) if keep else grad


class _LinearScan(torch.autograd.Function):
    """The blocked scan forward; backward ``g_t = G_t + conj(a_{t+1}) g_{t+1}`` (a scan too),
    ``dL/db_t = g_t``, ``dL/da_t = g_t conj(h_{t-1})``, ``dL/dh0 = conj(a_1) g_1``."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        h = _blocked_scan(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, h, h0 = ctx.saved_tensors
        total = _adjoint(grad, a)
        grad_a = grad_h0 = None
        if ctx.needs_input_grad[0]:

            def conj(value: torch.Tensor) -> torch.Tensor:
                return value.conj() if value.is_complex() else value

            if a.dim() < total.dim():  # constant: sum over the steps, without a shifted copy
                grad_a = _reduce_to(total[1:] * conj(h[:-1]), a.shape) + _reduce_to(
                    total[0] * conj(h0), a.shape
                )
            else:
                previous = torch.cat([h0.unsqueeze(0), h[:-1]])
                grad_a = _reduce_to(total * conj(previous), a.shape)
            if not a.is_complex() and grad_a.is_complex():
                grad_a = grad_a.real
        if ctx.needs_input_grad[2]:
            first = a if a.dim() < total.dim() else a[0]
            grad_h0 = total[0] * (first.conj() if first.is_complex() else first)
        return grad_a, total if ctx.needs_input_grad[1] else None, grad_h0


def _chunk_size(steps: int) -> int:
    """A chunk length near ``sqrt(T)``: a divisor of ``T`` when one lies within a factor
    of two of it (no padding), else ``ceil(sqrt(T))``."""
    root = math.isqrt(steps)
    for size in sorted(range(max(1, root // 2), 2 * root + 1), key=lambda n: abs(n - root)):
        if steps % size == 0:
            return size
    return root + (root * root < steps)


def _blocked_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, reverse: bool = False
) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` for ``t = 1..T`` as a blocked scan (no autograd needed);
    with ``reverse``, ``h_t = a_t h_{t+1} + b_t`` for ``t = T..1`` (``h0`` enters after
    step ``T``), the adjoint's direction, without flipping any tensor.

    The sequence is cut into ``K ~ sqrt(T)`` chunks of ``C`` steps. Three passes,
    each a short loop of large vectorised operations: (1) the ``C`` steps of every
    chunk at once, from a zero state, with the running products of ``a``; (2) the
    ``K`` chunk boundaries, carrying the true state from chunk to chunk; (3) one
    correction ``h = local + (product of a) * carry`` for all steps. ``O(T)`` work
    in ``C + K ~ 2 sqrt(T)`` sequential steps instead of ``T`` (a two-level parallel
    scan; Blelloch 1990). Every pass writes into one output laid out chunk by chunk,
    which is the time order itself, so no step's values are copied twice; a
    coefficient constant in time keeps its powers ``a^1..a^C`` small.
    """
    steps = b.shape[0]
    size = _chunk_size(steps) if steps > 1 else 1
    chunks = -(-steps // size)
    padding = chunks * size - steps
    constant = a.dim() < b.dim()
    shape = torch.broadcast_shapes(b.shape[1:], a.shape if constant else a.shape[1:])  # type: ignore[no-untyped-call]
    dtype = torch.promote_types(a.dtype, b.dtype)
    if padding:  # zero steps after the real ones (before them in reverse): no effect on them
        zeros, ones = b.new_zeros((padding, *b.shape[1:])), a.new_ones((padding, *a.shape[1:]))
        b = torch.cat([zeros, b] if reverse else [b, zeros])
        if not constant:
            a = torch.cat([ones, a] if reverse else [a, ones])
    blocks_b = b.reshape(chunks, size, *b.shape[1:])
    out = torch.empty((chunks, size, *shape), dtype=dtype, device=b.device)
    # the order of steps within a chunk, and of the chunks, in the direction of the scan
    order = range(size - 1, -1, -1) if reverse else range(size)
    first, *rest = order
    out[:, first] = blocks_b[:, first]
    if constant:  # a^1 .. a^C, shaped to broadcast against (chunks, C, *shape)
        running = torch.cumprod(a.expand(size, *a.shape).to(dtype), dim=0)
        if reverse:
            running = running.flip(0)  # C small vectors
        running = running.reshape(1, size, *([1] * (len(shape) - a.dim())), *a.shape)
        previous = first
        for i in rest:  # pass 1
            torch.addcmul(blocks_b[:, i], a, out[:, previous], out=out[:, i])
            previous = i
        last = running[0, previous]
    else:
        blocks_a = a.reshape(chunks, size, *a.shape[1:])
        running = torch.empty_like(out)
        running[:, first] = blocks_a[:, first]
        previous = first
        for i in rest:  # pass 1
            torch.addcmul(blocks_b[:, i], blocks_a[:, i], out[:, previous], out=out[:, i])
            torch.mul(blocks_a[:, i], running[:, previous], out=running[:, i])
            previous = i
        last = running[:, previous]
    entering = torch.empty((chunks, *shape), dtype=dtype, device=b.device)
    chunk_order = list(range(chunks - 1, -1, -1) if reverse else range(chunks))
    entering[chunk_order[0]] = h0
    for before, k in itertools.pairwise(chunk_order):  # pass 2
        factor = last if constant else last[before]
        torch.addcmul(out[before, previous], factor, entering[before], out=entering[k])
    out.addcmul_(running, entering.unsqueeze(1))  # pass 3
    flat = out.reshape(chunks * size, *shape)
    return flat[padding:] if reverse else flat[:steps]


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
    with torch.no_grad():
        return _adjoint(direct, a)


def _adjoint(direct: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    coefficients = a.conj() if a.is_complex() else a
    start = torch.zeros_like(direct[0])
    if a.dim() < direct.dim():  # constant in time: the same coefficient at every step
        return _blocked_scan(coefficients.to(direct.dtype), direct, start, reverse=True)
    # Backwards in time, step t takes the coefficient of step t + 1 (none for the last).
    shifted = torch.cat([coefficients[1:], torch.zeros_like(coefficients[:1])])
    return _blocked_scan(shifted.to(direct.dtype), direct, start, reverse=True)
