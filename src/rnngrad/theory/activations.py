r"""Activation functions, their derivatives, and saturation.

For an activation :math:`\phi` the backward pass through one recurrent step
multiplies the gradient by :math:`\phi'(z)`, where ``z`` is the step's
pre-activation. How large that factor can be is

.. math:: \gamma = \sup_z |\phi'(z)|

(1 for tanh, 1/4 for the logistic sigmoid, 1 for relu and identity), and every
bound on a backpropagated gradient carries one factor of ``gamma`` per step
(Bengio et al. 1994; Pascanu et al. 2013).

Each activation also gives ``log_derivative(z) = ln phi'(z)`` computed without
forming ``phi'(z)``: ``1 - tanh(z)**2`` rounds to 0 for ``|z| > 19`` in float64,
while ``ln sech^2 z = 2 (ln 2 - |z| - log1p(exp(-2|z|)))`` stays exact.

Adding an activation
--------------------
Build an :class:`Activation` and pass it to :func:`register_activation`::

    import numpy as np
    from rnngrad import Activation, register_activation

    softsign = Activation(
        name="softsign",
        function=lambda z: z / (1 + np.abs(z)),
        derivative=lambda z: 1 / (1 + np.abs(z)) ** 2,
        log_derivative=lambda z: -2 * np.log1p(np.abs(z)),
        gamma=1.0,
        sup_at="z = 0",
    )
    register_activation(softsign)

After that every analysis and the CLI accept ``activation="softsign"``.
``gamma`` must be the true supremum of ``|derivative|``: the bounds rely on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError, ShapeError, UnknownActivationError

__all__ = [
    "Activation",
    "Saturation",
    "activation_names",
    "get_activation",
    "register_activation",
    "saturation",
]

ArrayFunction = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation and what the gradient analysis needs of it.

    Attributes:
        name: the name used by the API and the CLI.
        function: ``phi(z)``, elementwise on a float64 array.
        derivative: ``phi'(z)``, elementwise.
        log_derivative: ``ln |phi'(z)|``, elementwise, exact where ``phi'``
            underflows; ``-inf`` where ``phi'(z) == 0`` exactly.
        gamma: ``sup_z |phi'(z)|``.
        sup_at: where the supremum is reached, in words (for example ``"z = 0"``).
    """

    name: str
    function: ArrayFunction
    derivative: ArrayFunction
    log_derivative: ArrayFunction
    gamma: float
    sup_at: str


def _log_sech2(z: FloatArray) -> FloatArray:
    # ln(1 - tanh(z)^2) = ln(sech(z)^2) = 2 * (ln 2 - |z| - ln(1 + e^{-2|z|}))
    abs_z = np.abs(z)
    result: FloatArray = 2.0 * (math.log(2.0) - abs_z - np.log1p(np.exp(-2.0 * abs_z)))
    return result


def _sigmoid(z: FloatArray) -> FloatArray:
    # Two-sided form: never exponentiates a large positive number.
    e = np.exp(-np.abs(z))
    result: FloatArray = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return result


def _sigmoid_derivative(z: FloatArray) -> FloatArray:
    e = np.exp(-np.abs(z))
    return e / (1.0 + e) ** 2


def _log_sigmoid_derivative(z: FloatArray) -> FloatArray:
    # sigma'(z) = e^{-|z|} / (1 + e^{-|z|})^2
    abs_z = np.abs(z)
    return -abs_z - 2.0 * np.log1p(np.exp(-abs_z))


def _relu_derivative(z: FloatArray) -> FloatArray:
    # PyTorch's convention: the derivative at exactly 0 is 0.
    return (z > 0).astype(np.float64)


def _log_relu_derivative(z: FloatArray) -> FloatArray:
    return np.where(z > 0, 0.0, -np.inf)


_REGISTRY: dict[str, Activation] = {}


def register_activation(activation: Activation, *, replace: bool = False) -> None:
    """Make ``activation`` available by name to every analysis and the CLI.

    Raises:
        InvalidInputError: the name is taken (unless ``replace=True``) or
            ``gamma`` is not a positive finite number.
    """
    if not activation.name or not activation.name.isidentifier():
        raise InvalidInputError(f"activation name must be an identifier, got {activation.name!r}")
    if not (np.isfinite(activation.gamma) and activation.gamma > 0):
        raise InvalidInputError(f"gamma must be a positive finite number, got {activation.gamma!r}")
    if activation.name in _REGISTRY and not replace:
        raise InvalidInputError(
            f"activation {activation.name!r} is already registered; pass replace=True to replace it"
        )
    _REGISTRY[activation.name] = activation


def activation_names() -> list[str]:
    """The registered activation names, in registration order."""
    return list(_REGISTRY)


def get_activation(activation: str | Activation) -> Activation:
    """Look an activation up by name (an :class:`Activation` passes through).

    Raises:
        UnknownActivationError: the name is not registered.
    """
    if isinstance(activation, Activation):
        return activation
    try:
        return _REGISTRY[activation]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnknownActivationError(
            f"unknown activation {activation!r}; expected one of: {known}"
        ) from None


register_activation(
    Activation(
        name="tanh",
        function=np.tanh,
        derivative=lambda z: np.exp(_log_sech2(z)),  # 1 - tanh^2 cancels in saturation
        log_derivative=_log_sech2,
        gamma=1.0,
        sup_at="z = 0",
    )
)
register_activation(
    Activation(
        name="sigmoid",
        function=_sigmoid,
        derivative=_sigmoid_derivative,
        log_derivative=_log_sigmoid_derivative,
        gamma=0.25,
        sup_at="z = 0",
    )
)
register_activation(
    Activation(
        name="relu",
        function=lambda z: np.maximum(z, 0.0),
        derivative=_relu_derivative,
        log_derivative=_log_relu_derivative,
        gamma=1.0,
        sup_at="every z > 0",
    )
)
register_activation(
    Activation(
        name="identity",
        function=lambda z: np.asarray(z, dtype=np.float64).copy(),
        derivative=lambda z: np.ones_like(z, dtype=np.float64),
        log_derivative=lambda z: np.zeros_like(z, dtype=np.float64),
        gamma=1.0,
        sup_at="every z",
    )
)


@dataclass(frozen=True)
class Saturation:
    """How saturated the units of a trajectory are.

    A unit is saturated at a step when ``phi'(z) < threshold * gamma``: the
    gradient through it is cut to under ``threshold`` of the most the
    activation can pass.

    Attributes:
        share: fraction of all (step, unit) entries that are saturated.
        share_per_step: array of shape ``(T,)``, the fraction of units
            saturated at each step.
        share_per_unit: array of shape ``(N,)``, the fraction of steps at which
            each unit is saturated.
        threshold: the relative threshold used.
        activation: the activation's name.
    """

    share: float
    share_per_step: FloatArray
    share_per_unit: FloatArray
    threshold: float
    activation: str


def saturation(
    pre_activations: ArrayLike,
    activation: str | Activation = "tanh",
    *,
    threshold: float = 0.1,
) -> Saturation:
    """The share of units whose derivative is below ``threshold * gamma``.

    Args:
        pre_activations: ``z`` of shape ``(T, N)`` (steps by units), or
            ``(..., T, N)`` with leading batch axes, which are pooled.
        activation: name or :class:`Activation`.
        threshold: relative threshold in ``(0, 1]``; 0.1 means "passes less
            than a tenth of the largest possible derivative".

    Raises:
        ShapeError: fewer than two axes, or an empty array.
        NonFiniteInputError: NaN or inf in ``pre_activations``.
    """
    from rnngrad._checks import require_finite

    act = get_activation(activation)
    if not (0.0 < threshold <= 1.0):
        raise InvalidInputError(f"threshold must be in (0, 1], got {threshold!r}")
    z = np.asarray(pre_activations, dtype=np.float64)
    if z.ndim < 2 or z.size == 0:
        raise ShapeError(
            f"pre_activations must have shape (..., T, N) and be non-empty, got shape {z.shape}"
        )
    require_finite(z, "pre_activations")
    log_limit = np.log(threshold * act.gamma)
    saturated = act.log_derivative(z) < log_limit
    steps_first = saturated.reshape(-1, *saturated.shape[-2:])
    return Saturation(
        share=float(saturated.mean()),
        share_per_step=steps_first.mean(axis=(0, 2)),
        share_per_unit=steps_first.mean(axis=(0, 1)),
        threshold=threshold,
        activation=act.name,
    )
