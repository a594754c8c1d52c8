r"""The scalar RNN and its chain rule, factor by factor.

The model (all symbols scalars, ``t = 1..T``):

.. math::

    z_t = a h_{t-1} + b x_t + c, \qquad h_t = \phi(z_t), \qquad y = d h_T + e.

By the chain rule the gradient of ``y`` at step ``k`` is

.. math::

    \frac{\partial y}{\partial h_k}
      = d \prod_{t=k+1}^{T} \frac{\partial h_t}{\partial h_{t-1}}
      = d \prod_{t=k+1}^{T} a\,\phi'(z_t),

and since ``|phi'| <= gamma`` each factor is at most ``|a| gamma`` in size:

.. math:: |\partial y / \partial h_k| \le |d| (|a|\gamma)^{T-k}.

With ``gamma = 1`` for tanh this is the textbook argument (Bengio et al. 1994):
the gradient vanishes when ``|a| < 1`` and can explode when ``|a| > 1``.

Everything is computed in log space: the factors' ``log10`` magnitudes are
summed (a reverse cumulative sum), so ``T = 100_000`` gives exact, finite
``log10|dy/dh_k|`` even where the value itself is ``10**-30000``.
:func:`scalar_phase_diagram` evaluates ``log10|dy/dh_1|`` over a grid of
``a`` values and sequence lengths in one vectorised pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rnngrad._checks import require_finite
from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError, NumericalError, ShapeError
from rnngrad.logspace import to_float
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import t
from rnngrad.theory.activations import Activation, get_activation
from rnngrad.verdict import RATE_TOLERANCE, GrowthVerdict, growth_labels, growth_verdict

__all__ = [
    "TEXTBOOK_EXAMPLE",
    "ScalarChainRule",
    "ScalarPhaseDiagram",
    "scalar_chain_rule",
    "scalar_figure",
    "scalar_inputs",
    "scalar_phase_diagram",
]

_LN10 = math.log(10.0)

#: The three-step example that ``rnngrad scalar`` runs by default.
TEXTBOOK_EXAMPLE: dict[str, float | tuple[float, ...]] = {
    "a": 0.5,
    "b": 1.0,
    "c": 0.0,
    "d": 1.0,
    "e": 0.0,
    "h0": 0.0,
    "x": (1.0, 0.5, -0.3),
}


@dataclass(frozen=True, repr=False)
class ScalarChainRule(Displayable):
    """Forward pass, chain factors, gradients and bound of one scalar RNN.

    Arrays are float64. Index ``k - 1`` refers to step ``k``.

    Attributes:
        x: inputs ``x_1..x_T``, shape ``(T,)``.
        a, b, c, d, e, h0: the parameters and initial state.
        activation: the activation's name; ``gamma`` its ``sup|phi'|``.
        pre_activations: ``z_1..z_T``, shape ``(T,)``.
        h: ``h_1..h_T``, shape ``(T,)``; ``inf`` where an unbounded activation
            overflowed float64 (see ``overflow_step``).
        y: ``d h_T + e``.
        log10_abs_factors: shape ``(T-1,)``, entry ``k-1`` is
            ``log10|dh_{k+1}/dh_k|`` (``-inf`` for an exact zero).
        sign_factors: shape ``(T-1,)``, the factors' signs (0 for exact zeros).
        log10_abs_dy_dh: shape ``(T,)``, ``log10|dy/dh_k|``.
        sign_dy_dh: shape ``(T,)``.
        log10_bound: shape ``(T,)``, ``log10(|d| (|a| gamma)^(T-k))``.
        verdict: the growth rule applied from step T back to step 1.
        overflow_step: first step whose ``h`` overflowed, or ``None``.
    """

    x: FloatArray
    a: float
    b: float
    c: float
    d: float
    e: float
    h0: float
    activation: str
    gamma: float
    pre_activations: FloatArray
    h: FloatArray
    y: float
    log10_abs_factors: FloatArray
    sign_factors: FloatArray
    log10_abs_dy_dh: FloatArray
    sign_dy_dh: FloatArray
    log10_bound: FloatArray
    verdict: GrowthVerdict
    overflow_step: int | None = None

    @property
    def steps(self) -> int:
        """The sequence length ``T``."""
        return int(self.x.shape[0])

    @property
    def factors(self) -> FloatArray:
        """``dh_{k+1}/dh_k`` as floats; NaN where not representable."""
        return to_float(self.sign_factors, self.log10_abs_factors)

    @property
    def dy_dh(self) -> FloatArray:
        """``dy/dh_k`` as floats; NaN where not representable (use the log field)."""
        return to_float(self.sign_dy_dh, self.log10_abs_dy_dh)

    @property
    def bound(self) -> FloatArray:
        """``|d| (|a| gamma)^(T-k)`` as floats; NaN where not representable."""
        return to_float(np.ones_like(self.log10_bound), self.log10_bound)

    def _summary(self) -> Summary:
        return Summary(
            what=f"scalar chain rule, T = {self.steps}, a = {self.a:g}, {self.activation}",
            verdict=self.verdict.label,
            sentence=self.verdict.sentence,
            numbers=(
                ("dy/dh_1", number(self.dy_dh[0])),
                ("bound |d| (|a| gamma)^(T-1)", number(self.bound[0])),
                ("chain factors dh_(k+1)/dh_k", ", ".join(number(v) for v in self.factors)),
                ("gamma = sup|phi'|", number(self.gamma)),
                ("y", number(self.y)),
            ),
        )

    def _columns(self) -> dict[str, Any]:
        factors = np.append(self.factors, np.nan)  # no factor after the last step
        log_factors = np.append(self.log10_abs_factors, np.nan)
        return {
            "k": np.arange(1, self.steps + 1), "x": self.x, "z": self.pre_activations,
            "h": self.h, "factor": factors, "log10_abs_factor": log_factors,
            "dy_dh": self.dy_dh, "log10_abs_dy_dh": self.log10_abs_dy_dh,
            "bound": self.bound, "log10_bound": self.log10_bound,
        }  # fmt: skip

    def _figure(self, which: str | None = None) -> Figure:

        return scalar_figure(self)


def _log10_abs(value: float) -> float:
    return math.log10(abs(value)) if value != 0 else -math.inf


def _check_parameters(**parameters: float) -> None:
    for name, value in parameters.items():
        require_finite(float(value), name)


def scalar_inputs(steps: int | None = None, input_seed: int | None = None) -> FloatArray:
    """Inputs for ``steps`` steps: N(0, 1) draws from ``input_seed``, or zeros.

    Raises:
        InvalidInputError: ``steps < 1`` or not whole, a seed outside ``0..2**63-1``.
        ResourceError: the chain rule over ``steps`` would exceed the memory budget.
    """
    from rnngrad.limits import SCALAR_BYTES_PER_STEP, check_memory, check_seed, check_whole

    if steps is None:
        raise InvalidInputError("the number of steps T must be >= 1, got None")
    check_whole(steps, "the number of steps T")
    check_memory(steps * SCALAR_BYTES_PER_STEP, f"the scalar chain rule over T = {steps} steps")
    if input_seed is not None:
        check_seed(input_seed, "the input seed")
    if input_seed is None:
        return np.zeros(steps)
    return np.random.default_rng(input_seed).standard_normal(steps)


def _factor_logs(
    a: FloatArray | float, z: FloatArray, act: Activation
) -> tuple[FloatArray, FloatArray]:
    """``log10|a phi'(z)|`` and its sign, elementwise, exact zeros as ``-inf`` and 0."""
    a_arr = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log10_a = np.log10(np.abs(a_arr))
    log10_f = log10_a + act.log_derivative(z) / _LN10
    sign_f = np.sign(a_arr) * np.where(act.derivative(z) < 0, -1.0, 1.0)
    sign_f = np.where(np.isneginf(log10_f), 0.0, sign_f)
    return log10_f, sign_f


def scalar_chain_rule(
    x: ArrayLike | None = None,
    *,
    a: float = 0.5,
    b: float = 1.0,
    c: float = 0.0,
    d: float = 1.0,
    e: float = 0.0,
    h0: float = 0.0,
    activation: str | Activation = "tanh",
    tolerance: float = RATE_TOLERANCE,
) -> ScalarChainRule:
    """Run the scalar RNN and backpropagate through it exactly.

    Args:
        x: inputs ``x_1..x_T``, shape ``(T,)``; the textbook example's
            ``(1.0, 0.5, -0.3)`` when omitted. Use :func:`scalar_inputs` for
            zeros or seeded random inputs.
        a, b, c, d, e, h0: the parameters and ``h_0``.
        activation: ``"tanh"`` (default), ``"sigmoid"``, ``"relu"``,
            ``"identity"`` or any registered :class:`Activation`.
        tolerance: per-step tolerance of the growth rule (see :mod:`rnngrad.verdict`).

    Raises:
        ShapeError: ``x`` is empty or not one-dimensional.
        NonFiniteInputError: NaN or inf in ``x`` or a parameter.
        UnknownActivationError: an unregistered activation.
        NumericalError: ``b*x_t + c`` overflows float64.

    Example:
        >>> r = scalar_chain_rule([1.0, 0.5, -0.3], a=0.5)
        >>> float(r.dy_dh[0]) == float(r.factors[0] * r.factors[1] * r.d)
        True
    """
    act = get_activation(activation)
    xs = np.asarray(TEXTBOOK_EXAMPLE["x"] if x is None else x, dtype=np.float64)
    if xs.ndim != 1 or xs.size == 0:
        raise ShapeError(
            f"the input sequence x must be a non-empty 1-D sequence, got shape {xs.shape}"
        )
    from rnngrad.limits import SCALAR_BYTES_PER_STEP, check_memory

    check_memory(xs.size * SCALAR_BYTES_PER_STEP, f"the scalar chain rule over T = {xs.size} steps")
    require_finite(xs, "x")
    _check_parameters(a=a, b=b, c=c, d=d, e=e, h0=h0)
    steps = xs.size

    drive = b * xs + c
    if not np.isfinite(drive).all():
        bad = int(np.flatnonzero(~np.isfinite(drive))[0]) + 1
        raise NumericalError(f"b*x_t + c overflows float64 at step t = {bad}")
    z = np.empty(steps)
    h = np.empty(steps)
    prev = np.float64(h0)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            z[t] = a * prev + drive[t]
            prev = h[t] = act.function(np.asarray(z[t]))
    if np.isnan(z).any():
        bad = int(np.flatnonzero(np.isnan(z))[0]) + 1
        raise NumericalError(f"the forward pass produced NaN at step t = {bad}")
    not_finite = np.flatnonzero(~np.isfinite(h))
    overflow_step = int(not_finite[0]) + 1 if not_finite.size else None

    log10_f, sign_f = _factor_logs(a, z[1:], act)
    # dy/dh_k = d * prod_{j >= k} f_j  (f_j = dh_{j+1}/dh_j): a reverse cumulative sum.
    tail = np.concatenate([np.cumsum(log10_f[::-1])[::-1], [0.0]])
    tail_sign = np.concatenate([np.cumprod(sign_f[::-1])[::-1], [1.0]])
    log10_d = _log10_abs(d)
    log10_dy = log10_d + tail
    sign_dy = np.where(np.isneginf(log10_dy), 0.0, np.sign(d) * tail_sign)

    remaining = np.arange(steps - 1, -1, -1, dtype=np.float64)  # T - k
    log10_step_bound = _log10_abs(a) + math.log10(act.gamma)
    with np.errstate(invalid="ignore"):
        log10_bound = log10_d + np.where(remaining > 0, remaining * log10_step_bound, 0.0)

    y = d * float(h[-1]) + e
    return ScalarChainRule(
        x=xs,
        a=float(a),
        b=float(b),
        c=float(c),
        d=float(d),
        e=float(e),
        h0=float(h0),
        activation=act.name,
        gamma=act.gamma,
        pre_activations=z,
        h=h,
        y=y,
        log10_abs_factors=log10_f,
        sign_factors=sign_f,
        log10_abs_dy_dh=log10_dy,
        sign_dy_dh=sign_dy,
        log10_bound=log10_bound,
        verdict=growth_verdict(float(tail[0]), steps - 1, tolerance=tolerance),
        overflow_step=overflow_step,
    )


@dataclass(frozen=True)
class ScalarPhaseDiagram:
    """``log10|dy/dh_1|`` over a grid of recurrent weights and sequence lengths.

    Attributes:
        a: shape ``(A,)``, the recurrent weights.
        steps: shape ``(S,)``, the sequence lengths ``T``.
        log10_abs_grad: shape ``(A, S)``, ``log10|dy/dh_1|`` for each ``(a, T)``.
        log10_bound: shape ``(A, S)``, ``log10(|d| (|a| gamma)^(T-1))``.
        labels: shape ``(A, S)``, the growth rule's verdict per cell.
        activation: the activation's name.
        parameters: the other parameters ``b, c, d, e, h0``.
    """

    a: FloatArray
    steps: NDArray[np.int64]
    log10_abs_grad: FloatArray
    log10_bound: FloatArray
    labels: NDArray[np.str_]
    activation: str
    parameters: dict[str, float] = field(default_factory=dict)


def scalar_phase_diagram(
    a: ArrayLike,
    steps: ArrayLike,
    *,
    x: ArrayLike | None = None,
    b: float = 1.0,
    c: float = 0.0,
    d: float = 1.0,
    e: float = 0.0,
    h0: float = 0.0,
    activation: str | Activation = "tanh",
    tolerance: float = RATE_TOLERANCE,
) -> ScalarPhaseDiagram:
    """``log10|dy/dh_1|`` for every pair of ``a`` values and lengths ``T``, in one pass.

    The sequence of length ``T`` is the first ``T`` entries of ``x`` (zeros when
    ``x`` is omitted). One forward pass over ``max(steps)`` steps runs for all
    ``a`` at once; the running sum of ``log10|a phi'(z_t)|`` is read off at
    each requested ``T``, so the cost is ``O(len(a) * max(steps))`` and memory
    ``O(len(a) * len(steps))``.

    Raises:
        ShapeError: empty grids, or ``x`` shorter than ``max(steps)``.
        InvalidInputError: a length below 1.
        NonFiniteInputError: NaN or inf anywhere.
    """
    act = get_activation(activation)
    a_values = np.asarray(a, dtype=np.float64).reshape(-1)
    lengths = np.asarray(steps).reshape(-1)
    if a_values.size == 0 or lengths.size == 0:
        raise ShapeError("the a grid and the steps grid must both be non-empty")
    if not np.issubdtype(lengths.dtype, np.integer):
        if not np.all(np.equal(np.mod(lengths, 1), 0)):
            raise InvalidInputError("sequence lengths must be whole numbers")
    lengths = lengths.astype(np.int64)
    if lengths.min() < 1:
        raise InvalidInputError(f"sequence lengths must be >= 1, got {int(lengths.min())}")
    from rnngrad.limits import PHASE_BYTES_PER_CELL, check_memory

    check_memory(
        float(a_values.size) * float(lengths.size) * PHASE_BYTES_PER_CELL,
        f"a phase diagram of {a_values.size} x {lengths.size} cells",
    )
    require_finite(a_values, "a")
    _check_parameters(b=b, c=c, d=d, e=e, h0=h0)
    longest = int(lengths.max())
    xs = np.zeros(longest) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
    if xs.size < longest:
        raise ShapeError(f"x has {xs.size} entries but the longest sequence needs {longest}")
    require_finite(xs[:longest], "x")

    # Column j of the result is read when the running sum has reached T_j.
    order = np.argsort(lengths, kind="stable")
    result = np.empty((a_values.size, lengths.size))
    running = np.zeros(a_values.size)
    h = np.full(a_values.size, float(h0))
    position = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log10_a = np.log10(np.abs(a_values))
        for t in range(1, longest + 1):
            z = a_values * h + (b * xs[t - 1] + c)
            if t >= 2:
                running += log10_a + act.log_derivative(z) / _LN10
            h = act.function(z)
            while position < lengths.size and lengths[order[position]] == t:
                result[:, order[position]] = running
                position += 1
    if np.isnan(result).any():
        raise NumericalError("the forward pass overflowed to NaN for some a values")
    log10_d = _log10_abs(d)
    log10_abs_grad = log10_d + result
    with np.errstate(divide="ignore", invalid="ignore"):
        step_bound = np.log10(np.abs(a_values))[:, None] + math.log10(act.gamma)
        log10_bound = log10_d + np.where(lengths > 1, (lengths - 1) * step_bound, 0.0)
    labels = growth_labels(result, lengths - 1, tolerance=tolerance)
    return ScalarPhaseDiagram(
        a=a_values,
        steps=lengths,
        log10_abs_grad=log10_abs_grad,
        log10_bound=log10_bound,
        labels=labels,
        activation=act.name,
        parameters={"b": b, "c": c, "d": d, "e": e, "h0": h0},
    )


def scalar_figure(result: ScalarChainRule, title: str | None = None) -> Figure:
    """``|dy/dh_k|`` against its bound ``|d| (|a| gamma)^(T-k)``, log scale."""
    steps = list(range(1, result.steps + 1))
    return Figure(
        "scalar_chain_rule",
        title or t("dy/dh_k against its bound"),
        "k",
        "|dy/dh_k|",
        [
            Trace("|dy/dh_k|", steps, [10.0**v for v in result.log10_abs_dy_dh], "lines+markers"),
            Trace(
                t("bound |d|(|a|gamma)^(T-k)"),
                steps,
                [10.0**v for v in result.log10_bound],
                "lines+markers",
                dash=True,
            ),
        ],
        log_y=True,
        integer_x=True,
    )
