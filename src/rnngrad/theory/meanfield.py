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
``g = 1``. ``q*`` is found by bisection on ``(0, g^2]``.

Quadrature: both expectations are of ``sech^2`` powers, ``E[tanh^2(a z)] =
1 - E[sech^2(a z)]`` and ``E[tanh'(a z)^2] = E[sech^4(a z)]`` with ``a = sqrt(q)``.
For ``a <= 1`` they are Gauss-Hermite sums (probabilists' nodes). For ``a > 1``
``sech^2(a z)`` is a peak of width ``1/a``, narrower than the Hermite nodes'
spacing near 0, and a Hermite rule of any practical size misses it (about 1e-3
off in ``lambda_1`` at ``g = 4`` with 201 nodes); there the expectations are
composite Gauss-Legendre sums on ``z in [-12, 12]`` (the Gaussian tail beyond
is below 1e-32) with panels of width ``min(1/4, 1/(4a))``, which resolve the
peak to about 1e-12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnngrad.errors import InvalidInputError

__all__ = ["MAX_GAIN", "MeanFieldPrediction", "mean_field_lambda1"]

#: The largest gain the quadrature is set up for.
MAX_GAIN = 1000.0


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


def _sech_moments(a: float, nodes: int) -> tuple[float, float]:
    """``E[sech^2(a z)]`` and ``E[sech^4(a z)]`` for ``z ~ N(0, 1)``."""
    if a <= 1.0:
        z, w = np.polynomial.hermite_e.hermegauss(nodes)
        sech2 = 1.0 - np.tanh(a * z) ** 2
        w = w / math.sqrt(2.0 * math.pi)
        return float(np.sum(w * sech2)), float(np.sum(w * sech2 * sech2))
    points, weights = np.polynomial.legendre.leggauss(10)
    panels = math.ceil(24.0 / min(0.25, 0.25 / a))
    edges = np.linspace(-12.0, 12.0, panels + 1)
    half = 0.5 * (edges[1] - edges[0])
    z = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * points[None, :]
    w = (half * weights)[None, :] * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    sech2 = 1.0 - np.tanh(a * z) ** 2
    return float(np.sum(w * sech2)), float(np.sum(w * sech2 * sech2))


def mean_field_lambda1(gain: float, *, nodes: int = 201) -> MeanFieldPrediction:
    """The mean-field ``lambda_1`` of ``h_{t+1} = tanh(W h_t)``, ``W_ij ~ N(0, g^2/N)``.

    Args:
        gain: ``g > 0``.
        nodes: Gauss-Hermite nodes for ``sqrt(q*) <= 1`` (201 give about 12 digits).

    Raises:
        InvalidInputError: ``g`` not a positive finite number.
    """
    if not (math.isfinite(gain) and gain > 0):
        raise InvalidInputError(f"the gain g must be a positive finite number, got {gain}")
    if gain > MAX_GAIN:
        raise InvalidInputError(
            f"the gain g must be at most {MAX_GAIN:g} (the quadrature resolves tanh's "
            f"transition at scales down to 1/g), got {gain:g}"
        )
    if gain <= 1.0:
        return MeanFieldPrediction(gain, 0.0, gain * gain, math.log(gain))

    def excess(q: float) -> float:
        return gain * gain * (1.0 - _sech_moments(math.sqrt(q), nodes)[0]) - q

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
    chi1 = gain * gain * _sech_moments(math.sqrt(q_star), nodes)[1]
    return MeanFieldPrediction(gain, q_star, chi1, 0.5 * math.log(chi1))
