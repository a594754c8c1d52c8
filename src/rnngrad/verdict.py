r"""The rules that turn numbers into "vanishing", "exploding" or "neither".

Every verdict in rnngrad comes from one of the two rules here, and carries the
rule, its thresholds and the numbers it was applied to, so that a reader can
check it by hand.

Growth rule (a gradient backpropagated over ``steps`` steps)
    With ``log10_change = log10(|g_first| / |g_last|)`` (how much the gradient
    grew from the last step back to the first) the mean rate per step is
    ``r = log10_change / steps``, the log10 of the geometric mean of the
    per-step factors. The gradient is *vanishing* when ``10**r < 1/(1 + tol)``,
    *exploding* when ``10**r > 1 + tol``, and *neither* otherwise; ``tol``
    defaults to 1% per step. This is the textbook criterion ``|a| < 1`` /
    ``|a| > 1`` applied to the factors actually met, with a tolerance so that a
    gradient that drifts by a fraction of a percent per step is not alarmed.

Spectrum rule (a recurrent matrix ``W_hh`` with activation bound ``gamma``)
    The eigenvalue criterion of the linearised network: spectral radius
    ``rho < 1`` vanishing, ``rho > 1`` exploding (Bengio et al. 1994). The
    singular-value criterion (Pascanu et al. 2013): ``sigma_max * gamma < 1``
    is sufficient for vanishing; ``sigma_max * gamma > 1`` is necessary for
    exploding. The two disagree for non-normal matrices (``rho < 1`` but
    ``||W^k||`` grows for a while) and when the activation's bound ``gamma``
    rather than ``W`` decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rnngrad.errors import InvalidInputError, ShapeError
from rnngrad.logspace import format_signed_log10

__all__ = [
    "HORIZON_DECADES",
    "RATE_TOLERANCE",
    "TRANSIENT_THRESHOLD",
    "GrowthVerdict",
    "Label",
    "SpectrumVerdict",
    "gradient_horizon",
    "growth_labels",
    "growth_verdict",
    "spectrum_verdict",
]

Label = Literal["vanishing", "exploding", "neither"]

#: Default per-step tolerance of the growth rule (1% per step).
RATE_TOLERANCE = 0.01
#: The horizon is where a gradient has fallen this many decades below its peak.
HORIZON_DECADES = 3.0
#: ``max_k ||W^k||_2`` above this is flagged as strong transient growth.
TRANSIENT_THRESHOLD = 10.0


@dataclass(frozen=True)
class GrowthVerdict:
    """The verdict of the growth rule on one backpropagated gradient.

    Attributes:
        label: ``"vanishing"``, ``"exploding"`` or ``"neither"``.
        log10_change: ``log10(|g_first| / |g_last|)``; ``-inf`` when the
            gradient is exactly zero at the first step, ``inf`` when it is not
            finite.
        steps: number of backward steps the change is taken over.
        log10_rate: ``log10_change / steps`` (log10 per step); 0 when
            ``steps == 0``.
        tolerance: the relative per-step tolerance ``tol``.
        rule: the rule in words, with its thresholds.
    """

    label: Label
    log10_change: float
    steps: int
    log10_rate: float
    tolerance: float
    rule: str

    @property
    def factor_per_step(self) -> float:
        """Geometric mean of the per-step factors, ``10**log10_rate``."""
        return 10.0**self.log10_rate if self.log10_rate < 300 else math.inf

    @property
    def sentence(self) -> str:
        """One plain sentence stating the verdict and the number behind it."""
        if self.steps == 0:
            return "Only one step: there is no recurrence to backpropagate through."
        if self.log10_change == -math.inf:
            return "The gradient is exactly zero at the first step: it vanished completely."
        if self.log10_change == math.inf:
            return (
                "Exploding: the gradient is no longer finite (it overflowed to infinity or "
                "became NaN) within these steps."
            )
        change = format_signed_log10(1.0, self.log10_change)
        if self.label == "neither":
            return (
                f"Neither vanishing nor exploding: over {self.steps} steps the gradient "
                f"changes by a factor of {change}, about {self.factor_per_step:.4g} per step."
            )
        return (
            f"{self.label.capitalize()}: over {self.steps} steps the gradient changes by a "
            f"factor of {change}, about {self.factor_per_step:.4g} per step."
        )


def growth_verdict(
    log10_change: float, steps: int, *, tolerance: float = RATE_TOLERANCE
) -> GrowthVerdict:
    """Apply the growth rule to a gradient that changed by ``10**log10_change``.

    Args:
        log10_change: ``log10(|g_first| / |g_last|)``, may be ``-inf`` for an
            exact zero.
        steps: number of backward steps, ``T - 1`` for a sequence of length T.
        tolerance: per-step relative tolerance ``tol > 0``.
    """
    if steps < 0:
        raise InvalidInputError(f"steps must be >= 0, got {steps}")
    if not tolerance > 0:
        raise InvalidInputError(f"tolerance must be > 0, got {tolerance}")
    rule = (
        "mean factor per step = (|g_1|/|g_T|)^(1/(T-1)); "
        f"vanishing if below 1/{1 + tolerance:g}, exploding if above {1 + tolerance:g}, "
        "neither otherwise"
    )
    if steps == 0:
        return GrowthVerdict("neither", 0.0, 0, 0.0, tolerance, rule)
    rate = log10_change / steps
    label: Label = str(growth_labels(np.float64(log10_change), steps, tolerance=tolerance))  # type: ignore[assignment]
    return GrowthVerdict(label, float(log10_change), steps, float(rate), tolerance, rule)


def growth_labels(
    log10_change: ArrayLike, steps: ArrayLike, *, tolerance: float = RATE_TOLERANCE
) -> NDArray[np.str_]:
    """The growth rule's label, elementwise over broadcast arrays.

    Args:
        log10_change: ``log10(|g_first| / |g_last|)`` per case.
        steps: backward steps per case (0 gives ``"neither"``).
        tolerance: per-step relative tolerance.

    Returns:
        An array of ``"vanishing"``, ``"exploding"`` or ``"neither"``.
    """
    change = np.asarray(log10_change, dtype=np.float64)
    span = np.asarray(steps, dtype=np.float64)
    threshold = math.log10(1.0 + tolerance)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(span > 0, change / np.where(span > 0, span, 1.0), 0.0)
    return np.where(
        rate < -threshold, "vanishing", np.where(rate > threshold, "exploding", "neither")
    )


def gradient_horizon(log10_norms: ArrayLike, *, decades: float = HORIZON_DECADES) -> int | None:
    """Steps back from the last step until the gradient norm falls ``decades`` below its peak.

    Args:
        log10_norms: ``log10 ||dL/dh_t||`` for ``t = 1..T`` in time order
            (``-inf`` for exact zeros).
        decades: how far below the peak counts as "no longer reaches"
            (3 means 1e-3 of the peak).

    Returns:
        ``T - k`` for the last step ``k`` whose norm is below the peak by more
        than ``decades``, or ``None`` when no step is ("beyond T").
    """
    values = np.asarray(log10_norms, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ShapeError(f"log10_norms must be a non-empty 1-D array, got shape {values.shape}")
    peak = float(np.max(values))
    if peak == -math.inf:
        return 0
    below = np.flatnonzero(values < peak - decades)
    if below.size == 0:
        return None
    return int(values.size - 1 - below[-1])


@dataclass(frozen=True)
class SpectrumVerdict:
    """Both criteria applied to a recurrent matrix, and where they disagree.

    Attributes:
        label: the overall verdict (see :func:`spectrum_verdict`).
        eigenvalue_label: the eigenvalue criterion: ``rho < 1`` vanishing,
            ``rho > 1`` exploding, ``neither`` at ``rho == 1``.
        singular_value_label: ``"vanishing"`` when ``sigma_max * gamma < 1``
            (guaranteed), ``"inconclusive"`` otherwise (exploding is possible).
        spectral_radius: ``rho``.
        norm2_times_gamma: ``sigma_max * gamma`` (a rate network's
            ``(1 - delta) + delta sigma_max gamma``).
        transient_growth: ``max_k ||W^k||_2`` (``inf`` if unbounded).
        transient_flag: ``rho < 1`` but ``max_k ||W^k||_2`` above the threshold.
        disagreement: the criteria disagree, in words; empty when they agree.
        rule: the rules in words.
        leak: ``1 - delta`` for a rate network's step, else 0.
    """

    label: Label
    eigenvalue_label: Label
    singular_value_label: Literal["vanishing", "inconclusive"]
    spectral_radius: float
    norm2_times_gamma: float
    transient_growth: float
    transient_flag: bool
    disagreement: str
    rule: str
    leak: float = 0.0

    @property
    def sentence(self) -> str:
        """One plain sentence stating the verdict and the numbers behind it."""
        rho = self.spectral_radius
        sg = self.norm2_times_gamma
        bound = "sigma_max*gamma" if self.leak == 0 else "(1 - delta) + delta*sigma_max*gamma"
        if self.singular_value_label == "vanishing":
            text = (
                f"Vanishing, guaranteed: {bound} = {sg:.4g} < 1 bounds every "
                f"gradient step (spectral radius {rho:.4g})."
            )
        elif self.label == "exploding":
            text = (
                f"Exploding in the linear regime: spectral radius {rho:.4g} > 1 "
                "(saturation of the activation can still hold it back)."
            )
        elif self.label == "vanishing":
            text = f"Vanishing in the long run: spectral radius {rho:.4g} < 1."
        else:
            text = (
                f"Neither: spectral radius {rho:.4g} is 1, "
                "norms are preserved in the linear regime."
            )
        if self.transient_flag:
            text += (
                f" But W is non-normal: ||W^k|| reaches {self.transient_growth:.4g} before it "
                "decays, which the eigenvalues alone miss."
            )
        return text


def spectrum_verdict(
    spectral_radius: float,
    norm2: float,
    gamma: float,
    transient_growth: float,
    *,
    transient_threshold: float = TRANSIENT_THRESHOLD,
    radius_tolerance: float = 1e-8,
    leak: float = 0.0,
) -> SpectrumVerdict:
    """Apply the eigenvalue and singular-value criteria.

    The overall label is "vanishing" when ``sigma_max * gamma < 1`` (then it is
    certain); otherwise the eigenvalue criterion's label. ``rho`` within
    ``radius_tolerance`` of 1 counts as 1. A rate network's step
    ``(1 - delta) I + delta W diag(phi')`` (``leak = 1 - delta``) is bounded by
    ``leak + (1 - leak) sigma_max gamma`` instead, and ``spectral_radius`` and
    ``transient_growth`` are then those of ``(1 - delta) I + delta W``.
    """
    rule = (
        "eigenvalue criterion: rho < 1 vanishing, rho > 1 exploding; "
        "singular-value criterion: sigma_max*gamma < 1 guarantees vanishing, "
        "sigma_max*gamma > 1 is necessary for exploding; "
        f"transient growth flagged when rho < 1 and max_k ||W^k|| > {transient_threshold:g}"
    )
    eigenvalue_label: Label
    if spectral_radius < 1.0 - radius_tolerance:
        eigenvalue_label = "vanishing"
    elif spectral_radius > 1.0 + radius_tolerance:
        eigenvalue_label = "exploding"
    else:
        eigenvalue_label = "neither"
    bound = leak + (1.0 - leak) * norm2 * gamma
    singular_value_label: Literal["vanishing", "inconclusive"] = (
        "vanishing" if bound < 1.0 else "inconclusive"
    )
    label: Label = "vanishing" if singular_value_label == "vanishing" else eigenvalue_label
    transient_flag = eigenvalue_label == "vanishing" and transient_growth > transient_threshold

    disagreement = ""
    if singular_value_label == "vanishing" and eigenvalue_label != "vanishing":
        disagreement = (
            f"the eigenvalue criterion says {eigenvalue_label} (rho = {spectral_radius:.4g}), "
            f"but sigma_max*gamma = {bound:.4g} < 1 guarantees vanishing: "
            "the activation's derivative bound decides"
        )
    elif singular_value_label == "inconclusive" and eigenvalue_label == "vanishing":
        disagreement = (
            f"the eigenvalue criterion says vanishing (rho = {spectral_radius:.4g} < 1), "
            f"but sigma_max*gamma = {bound:.4g} >= 1 does not guarantee it: "
            f"the gradient can grow for a while (max_k ||W^k|| = {transient_growth:.4g})"
        )
    return SpectrumVerdict(
        label=label,
        eigenvalue_label=eigenvalue_label,
        singular_value_label=singular_value_label,
        spectral_radius=float(spectral_radius),
        norm2_times_gamma=float(bound),
        transient_growth=float(transient_growth),
        transient_flag=bool(transient_flag),
        disagreement=disagreement,
        rule=rule,
        leak=float(leak),
    )
