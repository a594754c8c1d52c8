r"""Mean-field theory of the largest Lyapunov exponent of random rate networks.

For ``x_{t+1} = (1 - delta) x_t + delta W tanh(x_t)`` with ``W_ij ~ N(0, g^2/N)`` and
``N -> infinity`` (dynamic mean-field theory, Sompolinsky, Crisanti & Sommers 1988,
here for the Euler map), each unit is driven by a Gaussian field ``eta_t = (W phi(x_t))_i``
whose autocorrelation is ``g^2 C_phi(tau)``, ``C_phi(tau) = E[phi(x_t) phi(x_{t+tau})]``.
With ``a = 1 - delta``, ``x_t = delta sum_{k>=0} a^k eta_{t-1-k}``, so the currents'
autocorrelation ``Delta(tau)`` solves

.. math::

    \Delta(\tau) = \frac{\delta^2 g^2}{1 - a^2} \sum_{m=-\infty}^{\infty}
        a^{|m|}\, C_\phi\big(\Delta(0), \Delta(\tau + m)\big),

``C_phi(v, c) = E[phi(x) phi(y)]`` for ``x, y`` Gaussian with variances ``v`` and
covariance ``c``. A perturbation ``y_t`` obeys ``y_{t+1} = a y_t + delta xi_t`` with the
Gaussian field ``xi_t = (W diag(phi'(x_t)) y_t)_i`` of covariance
``g^2 F(tau) Y(t, s)``, ``F(tau) = E[phi'(x_t) phi'(x_{t+tau})]``. Growing as
``Y(t, s) = e^{lambda (t + s)} Y(tau)``, ``tau = t - s``, it needs

.. math::

    Y(\tau) = \frac{\delta^2 g^2 e^{-2\lambda}}{1 - b^2} \sum_m b^{|m|}
        F(\tau + m)\, Y(\tau + m), \qquad b = a e^{-\lambda},

so ``lambda_1`` is where this positive operator's largest eigenvalue is 1 (the
discrete-time form of the two-replica equation of Sompolinsky et al.). For
``delta = 1`` only ``m = 0`` is left and ``lambda_1 = 0.5 ln(g^2 E[phi'(x)^2])``,
:func:`rnngrad.theory.meanfield.mean_field_lambda1`. For ``g <= 1`` the quiet state
``x = 0`` is stable and ``W``'s eigenvalues fill the disk of radius ``g`` (the circular
law), so ``lambda_1 = ln(1 - delta + delta g)``.

Numerics: ``tau`` on ``[-M, M]`` with ``M`` a few correlation times (``Delta`` is
continued by its last value beyond, where it has decayed), the self-consistency by
Anderson-accelerated iteration, the Gaussian expectations by Gauss-Hermite quadrature in the
form ``E[f(x) f(y)] = E_z[(E_xi f(sqrt(c) z + sqrt(v - c) xi))^2]`` (``0 <= c <= v``),
the eigenvalue of the symmetrised operator by ``eigvalsh``, ``lambda_1`` by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnngrad._checks import check_delta
from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError, NumericalError
from rnngrad.theory.meanfield import MAX_GAIN, mean_field_lambda1

__all__ = ["LeakyMeanField", "leaky_mean_field_lambda1"]

_NODES = 64
#: The largest gain: the quadrature's nodes resolve tanh at the currents' scale ~ g.
_MAX_GAIN = 20.0


@dataclass(frozen=True)
class LeakyMeanField:
    """The mean-field prediction for a random rate network.

    Attributes:
        gain, delta: ``g`` and ``delta``.
        lambda1: the largest exponent in nats per step of the map (divide by ``delta``
            for the flow's per unit time ``tau``).
        variance: ``Delta(0)``, the currents' variance (0 in the quiet state).
        autocorrelation: ``Delta(tau)`` for ``tau = 0..M`` (empty in the quiet state).
    """

    gain: float
    delta: float
    lambda1: float
    variance: float
    autocorrelation: FloatArray


def _expectations(variance: float, covariances: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``E[tanh(x) tanh(y)]`` and ``E[tanh'(x) tanh'(y)]`` for each covariance."""
    z, w = np.polynomial.hermite_e.hermegauss(_NODES)
    w = w / math.sqrt(2.0 * math.pi)
    c = np.clip(covariances, 0.0, variance)[:, None, None]
    inside = np.sqrt(c) * z[None, :, None] + np.sqrt(variance - c) * z[None, None, :]
    rates = np.tanh(inside)
    slopes = 1.0 - rates * rates
    mean_rate = np.tensordot(rates, w, axes=([2], [0]))  # over xi: (C, nodes of z)
    mean_slope = np.tensordot(slopes, w, axes=([2], [0]))
    return (mean_rate**2) @ w, (mean_slope**2) @ w


def _kernel(a: float, span: int) -> FloatArray:
    """``a^{|m|}`` for ``m = -span..span``."""
    m = np.arange(-span, span + 1)
    return a ** np.abs(m)


def _autocorrelation(gain: float, delta: float, span: int) -> FloatArray:
    """``Delta(tau)``, ``tau = 0..span``: the self-consistency's fixed point, by Anderson
    acceleration of the plain iteration (which contracts slowly for small ``delta``)."""
    a = 1.0 - delta
    factor = delta * delta * gain * gain / (1.0 - a * a)
    kernel = _kernel(a, 2 * span)

    def mapped(current: FloatArray) -> FloatArray:
        correlation = _expectations(float(current[0]), current)[0]
        full = np.concatenate([correlation[:0:-1], correlation])  # tau = -span..span
        padded = np.concatenate([np.full(2 * span, full[0]), full, np.full(2 * span, full[-1])])
        summed = np.convolve(padded, kernel, mode="same")[2 * span : 4 * span + 1]
        return np.asarray(factor * summed[span:])

    current = gain * gain * np.exp(-np.arange(span + 1) * delta)  # above the solution
    images: list[FloatArray] = []
    residuals: list[FloatArray] = []
    for _ in range(500):
        image = mapped(current)
        residual = image - current
        if np.max(np.abs(residual)) <= 1e-11 * max(1.0, float(image[0])):
            return image
        images, residuals = [*images[-5:], image], [*residuals[-5:], residual]
        if len(residuals) == 1:
            current = image
            continue
        changes = np.diff(np.array(residuals), axis=0).T
        moves = np.diff(np.array(images), axis=0).T
        weights = np.linalg.lstsq(changes, residual, rcond=None)[0]
        candidate = np.maximum(image - moves @ weights, 0.0)
        if candidate[0] < 0.5 * image[0]:  # heading for the quiet solution Delta = 0
            candidate, images, residuals = image, [], []
        current = candidate
    raise NumericalError(
        f"the mean-field autocorrelation did not settle for g = {gain:g}, delta = {delta:g}"
    )


def leaky_mean_field_lambda1(
    gain: float, delta: float, *, span: int | None = None
) -> LeakyMeanField:
    """The mean-field ``lambda_1`` of ``x_{t+1} = (1 - delta) x_t + delta W tanh(x_t)``.

    Args:
        gain: ``g > 0`` (at most 20 here: the quadrature's nodes resolve ``tanh`` at the
            currents' scale ``sqrt(Delta(0)) ~ g``).
        delta: ``dt / tau`` in ``(0, 1]``.
        span: ``M``, the largest lag (default: ``ceil(30 / delta)``).

    Raises:
        InvalidInputError: ``g`` or ``delta`` out of range.
        NumericalError: the self-consistency did not settle.
    """
    delta = check_delta(delta)
    if not (
        isinstance(gain, float | int) and math.isfinite(gain) and 0 < gain <= min(20.0, MAX_GAIN)
    ):
        raise InvalidInputError(f"the gain g must be in (0, {_MAX_GAIN:g}], got {gain!r}")
    empty = np.zeros(0)
    if gain <= 1.0:
        return LeakyMeanField(gain, delta, math.log(1.0 - delta + delta * gain), 0.0, empty)
    if delta == 1.0:
        plain = mean_field_lambda1(gain)
        return LeakyMeanField(gain, delta, plain.lambda1, plain.q_star, np.array([plain.q_star]))
    if span is not None and (isinstance(span, bool) or not isinstance(span, int)
                             or not 1 <= span <= 10_000):  # fmt: skip
        raise InvalidInputError(f"span must be a whole number in 1..10000, got {span!r}")
    m = span if span is not None else math.ceil(30.0 / delta)
    delta_tau = _autocorrelation(gain, delta, m)
    slopes = _expectations(float(delta_tau[0]), delta_tau)[1]
    f = np.concatenate([slopes[:0:-1], slopes])  # F(tau), tau = -m..m
    lags = np.arange(-m, m + 1)
    distance = np.abs(lags[:, None] - lags[None, :])
    a = 1.0 - delta

    root = np.sqrt(f)

    def excess(lam: float) -> float:
        # factor * b^|i-j| f_j is similar to the symmetric root_i b^|i-j| root_j
        b = a * math.exp(-lam)
        factor = delta * delta * gain * gain * math.exp(-2.0 * lam) / (1.0 - b * b)
        symmetric = root[:, None] * b**distance * root[None, :]
        return factor * float(np.linalg.eigvalsh(symmetric)[-1]) - 1.0

    # ||J|| <= 1 - delta + delta ||W|| and ||W|| -> 2 g: lambda_1 lies below ln of that
    low, high = math.log(a) + 1e-9, math.log(1.0 - delta + 2.0 * delta * gain)
    if excess(high) > 0:
        raise NumericalError(f"the mean-field lambda_1 lies beyond its bound for g = {gain:g}")
    for _ in range(100):
        middle = 0.5 * (low + high)
        if excess(middle) > 0:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12:
            break
    return LeakyMeanField(gain, delta, 0.5 * (low + high), float(delta_tau[0]), delta_tau)
