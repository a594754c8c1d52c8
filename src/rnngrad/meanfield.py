r"""Mean-field theory of the largest Lyapunov exponent of random tanh networks.

For ``h_{t+1} = tanh(W h_t)`` with ``W_ij ~ N(0, g^2 / N)`` and ``N -> infinity``
the pre-activations are Gaussian with variance ``q``, which settles at the
fixed point

.. math:: q^* = g^2\, \mathbb{E}_z\big[\tanh(\sqrt{q^*}\, z)^2\big], \qquad z \sim N(0, 1),

and a small perturbation grows per step by ``chi_1 = g^2 E[tanh'(sqrt(q*) z)^2]``
in squared norm, so

.. math:: \lambda_1 = \tfrac12 \ln \Big( g^2\, \mathbb{E}_z\big[\tanh'(\sqrt{q^*}\, z)^2\big] \Big)

(Molgedey, Schuster & Ritter 1992; Poole et al. 2016). For ``g <= 1`` the only
fixed point is ``q* = 0`` and ``lambda_1 = ln g``; the transition to chaos is at
``g = 1``. Expectations are Gauss-Hermite sums (probabilists' nodes), and
``q*`` is found by bisection on ``(0, g^2]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnngrad.errors import InvalidInputError

__all__ = ["MeanFieldPrediction", "mean_field_lambda1"]


@dataclass(frozen=True)
class MeanFieldPrediction:
    """The mean-field prediction for a random tanh network of gain ``g``.

    Attributes:
        gain: ``g``.
        q_star: the fixed-point variance of the pre-activations.
        chi1: the mean squared derivative gain ``g^2 E[tanh'(sqrt(q*) z)^2]``.
        lambda1: ``0.5 ln chi1`` in nats per step.
    """

    gain: float
    q_star: float
    chi1: float
    lambda1: float


def _gaussian_expectation(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    points, weights = np.polynomial.hermite_e.hermegauss(nodes)
    return points, weights / math.sqrt(2.0 * math.pi)


def mean_field_lambda1(gain: float, *, nodes: int = 201) -> MeanFieldPrediction:
    """The mean-field ``lambda_1`` of ``h_{t+1} = tanh(W h_t)``, ``W_ij ~ N(0, g^2/N)``.

    Args:
        gain: ``g > 0``.
        nodes: Gauss-Hermite nodes (201 gives about 12 digits for ``g <= 10``).

    Raises:
        InvalidInputError: ``g`` not a positive finite number.
    """
    if not (math.isfinite(gain) and gain > 0):
        raise InvalidInputError(f"the gain g must be a positive finite number, got {gain}")
    if gain <= 1.0:
        return MeanFieldPrediction(gain, 0.0, gain * gain, math.log(gain))
    z, w = _gaussian_expectation(nodes)

    def excess(q: float) -> float:
        return gain * gain * float(np.sum(w * np.tanh(math.sqrt(q) * z) ** 2)) - q

    low, high = 1e-12, gain * gain  # excess(low) > 0 for g > 1, excess(high) < 0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if excess(middle) > 0:
            low = middle
        else:
            high = middle
        if high - low <= 1e-15 * high:
            break
    q_star = 0.5 * (low + high)
    derivative = 1.0 - np.tanh(math.sqrt(q_star) * z) ** 2
    chi1 = gain * gain * float(np.sum(w * derivative**2))
    return MeanFieldPrediction(gain, q_star, chi1, 0.5 * math.log(chi1))
