r"""Re-orthonormalising the tangent basis of the QR (Benettin) method, and when.

The QR method carries ``k`` tangent vectors ``Q`` along a trajectory and factors
``J_t \cdots J_{s+1} Q_s = Q_t R`` now and then, adding ``ln |R_ii|``. In exact
arithmetic the factorisation may wait any number of steps: the product of the
triangular factors of every step equals the triangular factor of the product,
so the exponents do not depend on the interval. What limits the wait is
rounding: after ``m`` steps the columns have grown at different rates and the
block's condition number is about ``exp(m * spread)`` with ``spread`` the range
of the local growth rates ``ln |R_ii| / m``; the smallest directions keep a
relative accuracy of about ``eps * cond`` (Householder QR is backward stable
column by column, and each column of a matrix product is computed to ``eps`` of
its own norm). :func:`next_interval` keeps that relative error of each ``|R_ii|``
below ``ROUNDING_TOLERANCE = 1e-3`` per factorisation, on the evidence of the
last block. The error is a rounding error, of either sign, and the run adds
``T / m`` of them, so its first-order part averages out (``1e-3 sqrt(T/m) / T``
per step: ``3e-5`` for ``T = 2000, m = 5``) and what is systematic is of second
order (``1e-6`` per factorisation): both far inside any statistical interval.
The interval adapts to the dynamics: dozens of steps for a few leading
exponents, about five for a full spectrum whose saturated units contract by
``e^-5`` per step while the leading direction grows. In float32 the same
tolerance leaves a budget of ``ln(1e-3 / 1.2e-7) = 9`` nats.

Two factorisations are offered, both returning ``Q`` explicitly and only the
logarithms of ``|diag R|`` (the rest of ``R`` is never needed):

- ``"householder"``: LAPACK's ``geqrf`` / ``orgqr`` through ``torch.linalg.qr``.
- ``"cholesky2"``: CholeskyQR2 (Fukaya et al. 2014; Yamamoto et al. 2015): two
  passes of ``G = A^T A = L L^T``, ``Q = A L^{-T}``, almost all of the work in
  matrix products. Exact to rounding when ``cond(A)`` is below about
  ``eps^(-1/2)``; a Gram matrix that is not numerically positive definite, or
  whose Cholesky factor's diagonal spans more than ``eps^(-1/4)`` (a lower bound
  of ``cond(A)``, kept well inside that limit), sends that call to Householder.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["QR_METHODS", "QRMethod", "log_abs_diag_qr", "next_interval"]

QRMethod = Literal["householder", "cholesky2"]
QR_METHODS: tuple[QRMethod, ...] = ("householder", "cholesky2")

# The relative rounding error allowed in each |R_ii| per factorisation.
ROUNDING_TOLERANCE = 1e-3

# The most steps between factorisations, whatever the evidence: a slowly changing
# trajectory can still turn within a few dozen steps.
MAX_INTERVAL = 64


def _householder(basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q, r = torch.linalg.qr(basis)
    return q, torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs()).double()


def _cholesky_pass(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """One CholeskyQR pass: ``A = Q R`` with ``R = L^T`` from ``A^T A = L L^T``."""
    gram = a.mT @ a
    factor, info = torch.linalg.cholesky_ex(gram)
    diagonal = torch.diagonal(factor, dim1=-2, dim2=-1)
    if bool((info != 0).any()) or not bool((diagonal > 0).all()):
        return a, diagonal, False
    span = diagonal.amax(dim=-1) / diagonal.amin(dim=-1)
    if float(span.max()) > torch.finfo(a.dtype).eps ** -0.25:
        return a, diagonal, False
    q = torch.linalg.solve_triangular(factor.mT, a, upper=True, left=False)
    return q, diagonal, True


def _cholesky2(basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    first, diagonal1, ok = _cholesky_pass(basis)
    if ok:
        second, diagonal2, ok = _cholesky_pass(first)
        if ok:
            logs = torch.log(diagonal1).double() + torch.log(diagonal2).double()
            return second, logs
    return _householder(basis)


def log_abs_diag_qr(
    basis: torch.Tensor, method: QRMethod = "householder"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q, ln |diag R|)`` of ``basis = Q R`` for a batch ``(B, n, k)``, ``k <= n``.

    ``Q`` is ``(B, n, k)`` with orthonormal columns in ``basis``'s dtype; the
    logarithms are ``(B, k)`` in float64 (``-inf`` for a column that is exactly
    dependent on those before it).
    """
    if method == "householder":
        return _householder(basis)
    if method == "cholesky2":
        return _cholesky2(basis)
    raise ValueError(f"method must be one of {QR_METHODS}, got {method!r}")


def next_interval(log_diag: torch.Tensor, steps: int, dtype: torch.dtype) -> int:
    """Steps until the next factorisation, from the last block's ``ln |R_ii|``.

    Args:
        log_diag: ``(B, k)`` the logarithms of the last factorisation, which
            covered ``steps`` steps.
        steps: the length of that block.
        dtype: the basis' dtype, whose ``eps`` sets the budget.

    Returns:
        The largest ``m <= MAX_INTERVAL`` with ``m * rate <= ln(ROUNDING_TOLERANCE / eps)``,
        where ``rate`` is the larger of the block's spread of growth rates (the
        widest trajectory) and its largest absolute growth rate (so that no
        column grows or shrinks by more than the budget either); 1 when a rate
        is not finite.
    """
    budget = math.log(ROUNDING_TOLERANCE / torch.finfo(dtype).eps)
    rates = log_diag / steps
    if not bool(torch.isfinite(rates).all()):
        return 1
    spread = float((rates.amax(dim=-1) - rates.amin(dim=-1)).max())
    growth = float(rates.abs().max())
    rate = max(spread, growth)
    if rate <= budget / MAX_INTERVAL:
        return MAX_INTERVAL
    return max(1, int(budget / rate))
