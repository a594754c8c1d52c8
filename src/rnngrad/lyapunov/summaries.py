r"""What a full Lyapunov spectrum says about a network as a whole, per unit.

For the ``N`` exponents ``lambda_1 >= ... >= lambda_N`` of an ``N``-dimensional map
(the quantities that studies of random and trained rate networks report; Engelken,
Wolf & Abbott 2023; Clark et al. 2023):

- the **unstable fraction** ``#{i : lambda_i > 0} / N``;
- the **entropy rate per unit** ``h_KS / N = sum_{lambda_i > 0} lambda_i / N`` (Pesin's
  identity, an upper bound in general: the rate at which the dynamics create
  information, in nats per step and unit);
- the **attractor dimension per unit** ``D_KY / N`` (Kaplan & Yorke 1979);
- the **mean exponent** ``sum_i lambda_i / N = <ln |det J_t|> / N``, the phase-space
  contraction per step and unit.

A **split-half check** gives the same four from the averages over the first and the
second half of the run: a spectrum that has settled gives the same values twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnngrad._types import FloatArray

__all__ = ["SpectrumSummaries", "kaplan_yorke_dimension", "spectrum_summaries"]


def kaplan_yorke_dimension(exponents: FloatArray, complete: bool) -> float | None:
    """``D_KY = j + (lambda_1 + ... + lambda_j) / |lambda_{j+1}|`` (Kaplan & Yorke 1979).

    ``j`` is the largest index with a non-negative partial sum. Returns 0 when
    ``lambda_1 < 0``, the state size when every partial sum is non-negative and
    the spectrum is ``complete``, and ``None`` when that cannot be decided from
    the ``k`` exponents at hand.
    """
    values = np.sort(np.asarray(exponents, dtype=np.float64))[::-1]
    if values.size == 0 or not np.isfinite(values[0]):
        return None
    sums = np.cumsum(values)
    if sums[0] < 0:
        return 0.0
    nonnegative = np.flatnonzero(sums >= 0)
    j = int(nonnegative[-1]) + 1  # count of exponents in the non-negative prefix
    if j == values.size:
        return float(j) if complete else None
    following = values[j]
    if following == -math.inf:
        return float(j)
    return float(j + sums[j - 1] / abs(following))


@dataclass(frozen=True)
class SpectrumSummaries:
    """The per-unit summaries of one full spectrum (see the module docstring).

    Attributes:
        unstable_fraction: share of positive exponents.
        entropy_rate_per_unit: ``h_KS / N``, nats per step and unit.
        kaplan_yorke_per_unit: ``D_KY / N`` (``None`` when undefined).
        mean_exponent: ``sum_i lambda_i / N`` in nats per step (``-inf`` when an exponent
            is ``-inf``: a direction that the Jacobians annihilate).
        halves: the same summaries of the first and the second half's averages, when
            the run kept them.
    """

    unstable_fraction: float
    entropy_rate_per_unit: float
    kaplan_yorke_per_unit: float | None
    mean_exponent: float
    halves: tuple[SpectrumSummaries, SpectrumSummaries] | None = None

    def as_dict(self) -> dict[str, object]:
        """A plain dict, ``None`` for what is not a finite number; halves nested."""

        def finite(value: float | None) -> float | None:
            return value if value is not None and math.isfinite(value) else None

        own: dict[str, object] = {
            "unstable_fraction": self.unstable_fraction,
            "entropy_rate_per_unit": finite(self.entropy_rate_per_unit),
            "kaplan_yorke_per_unit": finite(self.kaplan_yorke_per_unit),
            "mean_exponent": finite(self.mean_exponent),
        }
        if self.halves is not None:
            own["first_half"] = self.halves[0].as_dict()
            own["second_half"] = self.halves[1].as_dict()
        return own


def spectrum_summaries(
    exponents: FloatArray, halves: FloatArray | None = None
) -> SpectrumSummaries | None:
    """The summaries of a full spectrum ``(N,)`` (and of its halves ``(2, N)``); ``None``
    for an empty one."""
    values = np.asarray(exponents, dtype=np.float64)
    size = values.size
    if size == 0 or not np.isfinite(values[0]):
        return None
    positive = values[values > 0]
    dimension = kaplan_yorke_dimension(values, complete=True)
    parts = None
    if halves is not None:
        first = spectrum_summaries(halves[0])
        second = spectrum_summaries(halves[1])
        if first is not None and second is not None:
            parts = (first, second)
    return SpectrumSummaries(
        unstable_fraction=float(positive.size / size),
        entropy_rate_per_unit=float(positive.sum() / size),
        kaplan_yorke_per_unit=None if dimension is None else dimension / size,
        mean_exponent=float(values.mean()),
        halves=parts,
    )
