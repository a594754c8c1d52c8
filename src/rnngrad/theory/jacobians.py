r"""Exact Jacobian products of an Elman RNN, in log space.

The network (``t = 1..T``, hidden size ``N``, input size ``D``):

.. math::

    z_t = W_{hh} h_{t-1} + W_{xh} x_t + b, \qquad h_t = \phi(z_t).

One step's Jacobian is ``J_t = dh_t/dh_{t-1} = diag(phi'(z_t)) W_hh`` and
backpropagation through time multiplies them:

.. math::

    \frac{\partial h_T}{\partial h_k} = J_T J_{T-1} \cdots J_{k+1}, \qquad
    \frac{\partial L}{\partial h_k} = \Big(\frac{\partial h_T}{\partial h_k}\Big)^{\!\top}
        \frac{\partial L}{\partial h_T}

(Bengio et al. 1994; Pascanu et al. 2013), plus, when the loss reads every
step, the direct term ``g_k = dL/dh_k|direct + J_{k+1}^T g_{k+1}``.

Algorithm. The products are built backwards, ``P_k = P_{k+1} J_{k+1}``, with the
running matrix renormalised after every step and its scale kept as ``log10``.
``phi'`` enters as ``exp(ln phi' - max ln phi')`` so that a saturated unit whose
``phi'`` underflows is still carried correctly relative to the others. The
spectral norms of the ``T`` products come from batched SVDs over chunks of
steps, so memory stays ``O(chunk * N^2)``. The gradient follows the same
recursion on a vector. Exact zeros (a dead relu layer, ``W = 0``) give
``log10 = -inf``; everything else stays finite for any ``T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from rnngrad._checks import require_finite
from rnngrad._types import FloatArray
from rnngrad.errors import NumericalError, ShapeError
from rnngrad.logspace import to_float
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import t
from rnngrad.theory.activations import Activation, Saturation, get_activation, saturation
from rnngrad.theory.spectrum import as_square_matrix
from rnngrad.verdict import (
    RATE_TOLERANCE,
    GrowthVerdict,
    gradient_horizon,
    growth_verdict,
)

__all__ = [
    "ElmanTrajectory",
    "JacobianProducts",
    "elman_forward",
    "elman_jacobian_products",
    "jacobian_figure",
]

_LN10 = math.log(10.0)


@dataclass(frozen=True)
class ElmanTrajectory:
    """The forward pass of an Elman RNN.

    Attributes:
        pre_activations: ``z_1..z_T``, shape ``(T, N)``.
        h: ``h_1..h_T``, shape ``(T, N)``.
        h0: the initial state, shape ``(N,)``.
    """

    pre_activations: FloatArray
    h: FloatArray
    h0: FloatArray


def _vector(value: ArrayLike | None, size: int, name: str) -> FloatArray:
    if value is None:
        return np.zeros(size)
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (size,):
        raise ShapeError(f"{name} must have shape ({size},), got {array.shape}")
    require_finite(array, name)
    return array


def elman_forward(
    W_hh: ArrayLike,
    x: ArrayLike,
    *,
    W_xh: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    h0: ArrayLike | None = None,
    activation: str | Activation = "tanh",
) -> ElmanTrajectory:
    """Run ``h_t = phi(W_hh h_{t-1} + W_xh x_t + b)`` for ``t = 1..T``.

    Args:
        W_hh: shape ``(N, N)``.
        x: inputs, shape ``(T, D)``.
        W_xh: shape ``(N, D)``; when omitted ``D`` must equal ``N`` and the
            inputs are added to the pre-activation directly.
        bias: shape ``(N,)``, zeros when omitted.
        h0: shape ``(N,)``, zeros when omitted.
        activation: a registered activation name or :class:`Activation`.

    Raises:
        ShapeError: mismatched shapes or ``T = 0``.
        NonFiniteInputError: NaN or inf in any argument.
        NumericalError: the state overflowed float64.
    """
    recurrent = as_square_matrix(W_hh, "W_hh")
    act = get_activation(activation)
    hidden = recurrent.shape[0]
    inputs = np.asarray(x, dtype=np.float64)
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        raise ShapeError(f"x must have shape (T, D) with T >= 1, got {inputs.shape}")
    from rnngrad.limits import check_memory

    # The drive, pre-activations, states and the products' gradients: (T, N) each, and
    # a few N x N matrices.
    check_memory(
        8.0 * (6 * inputs.shape[0] * hidden + 4 * hidden * hidden),
        f"an Elman trajectory of T = {inputs.shape[0]} steps and N = {hidden} units",
    )
    require_finite(inputs, "x")
    if W_xh is None:
        if inputs.shape[1] != hidden:
            raise ShapeError(
                f"without W_xh the inputs must have N = {hidden} features, got {inputs.shape[1]}"
            )
        drive = inputs.copy()
    else:
        input_matrix = np.asarray(W_xh, dtype=np.float64)
        if input_matrix.shape != (hidden, inputs.shape[1]):
            raise ShapeError(
                f"W_xh must have shape ({hidden}, {inputs.shape[1]}), got {input_matrix.shape}"
            )
        require_finite(input_matrix, "W_xh")
        drive = inputs @ input_matrix.T
    drive += _vector(bias, hidden, "bias")
    state = _vector(h0, hidden, "h0")
    steps = inputs.shape[0]
    z = np.empty((steps, hidden))
    h = np.empty((steps, hidden))
    previous = state
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            z[t] = recurrent @ previous + drive[t]
            previous = h[t] = act.function(z[t])
    if not np.isfinite(h).all():
        bad = int(np.flatnonzero(~np.isfinite(h).all(axis=1))[0]) + 1
        raise NumericalError(f"the hidden state overflowed float64 at step t = {bad}")
    return ElmanTrajectory(pre_activations=z, h=h, h0=state)


@dataclass(frozen=True, repr=False)
class JacobianProducts(Displayable):
    """The exact products ``dh_T/dh_k`` and gradients ``dL/dh_k`` of one trajectory.

    Index ``k - 1`` refers to step ``k``.

    Attributes:
        trajectory: the forward pass.
        activation: the activation's name.
        log10_norm: shape ``(T,)``, ``log10 ||dh_T/dh_k||_2`` (0 at ``k = T``,
            where the product is the identity).
        log10_grad_norm: shape ``(T,)``, ``log10 ||dL/dh_k||_2``, or ``None``
            when no loss gradient was given.
        grad_direction: shape ``(T, N)``, ``dL/dh_k / ||dL/dh_k||`` (zeros for
            an exact zero gradient), or ``None``.
        saturation: saturation of the trajectory's units.
        verdict: the growth rule on the gradient (on ``||dh_T/dh_k||`` when no
            loss gradient was given), from step T back to step 1.
        horizon: steps back from T until the gradient falls 1e3 below its peak,
            ``None`` for "beyond T".
    """

    trajectory: ElmanTrajectory
    activation: str
    log10_norm: FloatArray
    log10_grad_norm: FloatArray | None
    grad_direction: FloatArray | None
    saturation: Saturation
    verdict: GrowthVerdict
    horizon: int | None

    @property
    def grad(self) -> FloatArray | None:
        """``dL/dh_k`` as floats, shape ``(T, N)``; NaN rows where not representable."""
        if self.log10_grad_norm is None or self.grad_direction is None:
            return None
        scale = to_float(np.ones_like(self.log10_grad_norm), self.log10_grad_norm)
        return self.grad_direction * scale[:, None]

    def _summary(self) -> Summary:
        steps = self.log10_norm.size
        horizon = "beyond T" if self.horizon is None else f"{self.horizon} steps"
        numbers = [
            ("||dh_T/dh_1||_2", "10^" + number(self.log10_norm[0])),
            ("saturated derivatives", f"{self.saturation.share:.0%}"),
            ("horizon", horizon),
        ]
        if self.log10_grad_norm is not None:
            numbers.insert(1, ("||dL/dh_1||_2", "10^" + number(self.log10_grad_norm[0])))
        return Summary(
            what=f"exact Jacobian products, {self.activation}, T = {steps}",
            verdict=self.verdict.label,
            sentence=self.verdict.sentence,
            numbers=tuple(numbers),
        )

    def _columns(self) -> dict[str, Any]:
        """One row per step ``k``."""
        grad = self.log10_grad_norm
        return {
            "k": np.arange(1, self.log10_norm.size + 1),
            "log10_norm_dhT_dhk": self.log10_norm,
            "log10_grad_norm": [None] * self.log10_norm.size if grad is None else grad,
        }

    def _figure(self, which: str | None = None) -> Figure:

        return jacobian_figure(self)


def _scaled_derivative(log_derivative: FloatArray) -> tuple[FloatArray, float]:
    """``phi'`` divided by its largest entry, and that entry's log10 (``-inf`` if all zero)."""
    top = float(np.max(log_derivative))
    if top == -math.inf:
        return np.zeros_like(log_derivative), -math.inf
    return np.exp(log_derivative - top), top / _LN10


def _product_norms(
    W_hh: FloatArray, log_derivatives: FloatArray, chunk_bytes: int = 64 << 20
) -> FloatArray:
    """``log10 ||J_T ... J_{k+1}||_2`` for ``k = T..1`` (returned in order ``k = 1..T``)."""
    steps, hidden = log_derivatives.shape
    chunk = max(1, min(steps, chunk_bytes // (8 * hidden * hidden)))
    result = np.full(steps, -math.inf)
    result[steps - 1] = 0.0
    product = np.eye(hidden)
    log10_scale = 0.0
    buffer = np.empty((chunk, hidden, hidden))
    scales = np.empty(chunk)
    filled = 0
    ks: list[int] = []

    def flush() -> None:
        norms = np.linalg.norm(buffer[:filled], 2, axis=(1, 2))
        with np.errstate(divide="ignore"):
            result[ks] = scales[:filled] + np.log10(norms)

    for k in range(steps - 1, 0, -1):  # P_k = P_{k+1} J_{k+1}, J_{k+1} uses z at index k
        derivative, log10_top = _scaled_derivative(log_derivatives[k])
        if log10_top == -math.inf:
            break  # every unit is off: the product is exactly zero from here back
        product = (product * derivative) @ W_hh
        size = float(np.linalg.norm(product))
        if size == 0.0:
            break
        product /= size
        log10_scale += log10_top + math.log10(size)
        buffer[filled] = product
        scales[filled] = log10_scale
        ks.append(k - 1)
        filled += 1
        if filled == chunk:
            flush()
            filled = 0
            ks.clear()
    if filled:
        flush()
    return result


def _gradients(
    W_hh: FloatArray, log_derivatives: FloatArray, direct: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``log10 ||g_k||`` and unit ``g_k`` for ``g_k = direct_k + J_{k+1}^T g_{k+1}``."""
    steps, hidden = direct.shape
    log10_norm = np.full(steps, -math.inf)
    direction = np.zeros((steps, hidden))
    carried = np.zeros(hidden)  # unit vector (or 0) of J_{k+1}^T g_{k+1}
    log10_carried = -math.inf
    direct_norms = np.linalg.norm(direct, axis=1)
    for k in range(steps - 1, -1, -1):
        with np.errstate(divide="ignore"):
            log10_direct = math.log10(direct_norms[k]) if direct_norms[k] > 0 else -math.inf
        top = max(log10_carried, log10_direct)
        # g_k / 10**top: both terms are scaled by at most 1, so nothing overflows.
        vector = np.zeros(hidden)
        if log10_direct > -math.inf:
            vector += (direct[k] / direct_norms[k]) * 10.0 ** (log10_direct - top)
        if log10_carried > -math.inf:
            vector += carried * 10.0 ** (log10_carried - top)
        size = float(np.linalg.norm(vector))
        if size > 0:
            direction[k] = vector / size
            log10_norm[k] = top + math.log10(size)
        if k == 0:
            break
        derivative, log10_top = _scaled_derivative(log_derivatives[k])
        if log10_top == -math.inf or size == 0:
            carried, log10_carried = np.zeros(hidden), -math.inf
            continue
        back = W_hh.T @ (derivative * direction[k])
        back_size = float(np.linalg.norm(back))
        if back_size == 0.0:
            carried, log10_carried = np.zeros(hidden), -math.inf
        else:
            carried = back / back_size
            log10_carried = log10_norm[k] + log10_top + math.log10(back_size)
    return log10_norm, direction


def elman_jacobian_products(
    W_hh: ArrayLike,
    x: ArrayLike,
    *,
    W_xh: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    h0: ArrayLike | None = None,
    activation: str | Activation = "tanh",
    loss_grad: ArrayLike | None = None,
    saturation_threshold: float = 0.1,
    tolerance: float = RATE_TOLERANCE,
) -> JacobianProducts:
    """``||dh_T/dh_k||_2`` and ``dL/dh_k`` for every ``k``, exactly and in log space.

    Args:
        W_hh, x, W_xh, bias, h0, activation: the network and its inputs, as in
            :func:`elman_forward`.
        loss_grad: ``dL/dh_T`` of shape ``(N,)``, or the direct loss gradients
            ``dL/dh_t`` of every step, shape ``(T, N)``. Omit it to get only
            the Jacobian norms.
        saturation_threshold: relative threshold of :func:`rnngrad.saturation`.
        tolerance: per-step tolerance of the growth rule.

    Raises:
        ShapeError, NonFiniteInputError, NumericalError: see :func:`elman_forward`.
    """
    act = get_activation(activation)
    trajectory = elman_forward(W_hh, x, W_xh=W_xh, bias=bias, h0=h0, activation=act)
    recurrent = as_square_matrix(W_hh, "W_hh")
    steps, hidden = trajectory.h.shape
    log_derivatives = act.log_derivative(trajectory.pre_activations)
    log10_norm = _product_norms(recurrent, log_derivatives)

    log10_grad_norm: FloatArray | None = None
    grad_direction: FloatArray | None = None
    if loss_grad is not None:
        given = np.asarray(loss_grad, dtype=np.float64)
        if given.shape == (hidden,):
            direct = np.zeros((steps, hidden))
            direct[-1] = given
        elif given.shape == (steps, hidden):
            direct = given
        else:
            raise ShapeError(
                f"loss_grad must have shape ({hidden},) or ({steps}, {hidden}), got {given.shape}"
            )
        require_finite(direct, "loss_grad")
        log10_grad_norm, grad_direction = _gradients(recurrent, log_derivatives, direct)

    measured = log10_norm if log10_grad_norm is None else log10_grad_norm
    last = float(measured[-1])
    change = float(measured[0] - last) if last > -math.inf else 0.0
    return JacobianProducts(
        trajectory=trajectory,
        activation=act.name,
        log10_norm=log10_norm,
        log10_grad_norm=log10_grad_norm,
        grad_direction=grad_direction,
        saturation=saturation(trajectory.pre_activations, act, threshold=saturation_threshold),
        verdict=growth_verdict(change, steps - 1, tolerance=tolerance),
        horizon=gradient_horizon(measured),
    )


def jacobian_figure(result: JacobianProducts) -> Figure:
    """``||dh_T/dh_k||_2`` and, where a loss gradient was given, ``||dL/dh_k||_2``."""
    steps = list(range(1, result.log10_norm.size + 1))
    figure = Figure(
        "jacobian_products",
        t("exact Jacobian products"),
        "k",
        t("norm"),
        log_y=True,
        integer_x=True,
    )
    figure.traces.append(Trace("||dh_T/dh_k||_2", steps, list(10.0**result.log10_norm)))
    if result.log10_grad_norm is not None:
        figure.traces.append(
            Trace("||dL/dh_k||_2", steps, list(10.0**result.log10_grad_norm), dash=True)
        )
    return figure
