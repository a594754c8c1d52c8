r"""Error bars for time averages along trajectories: batch means over windows.

A Lyapunov exponent is a time average, ``lambda = (1/T) sum_t ln r_t``, of a
correlated sequence. Trajectories from independent initial states give
independent estimates, but a handful of them sees only the spread *between*
trajectories: when the dynamics are intermittent, or the estimate is still
converging, every trajectory can carry the same slow drift and the interval
across them stays narrow around a wrong value. The method of batch means
(Flegal & Jones 2010; the standard error of MCMC averages) also looks *along*
each trajectory: cut the ``T`` measured steps into ``W`` windows, take each
window's average ``v_{b,w}``, and treat the ``B W`` window averages as nearly
independent draws, which holds once a window is longer than the correlation
time:

.. math:: \mathrm{CI}_{95} = t_{0.975,\,BW-1}\; \mathrm{sd}(v_{b,w})
          \sqrt{\frac{1 + \rho}{1 - \rho} \frac{1}{BW}},

where ``rho`` is the lag-1 autocorrelation of consecutive windows (clipped to
``[0, 0.9]``): correlated windows carry less information than their number
says (the AR(1) correction). The reported half-width is the larger of this and
the interval across trajectories. Three checks say whether the estimate has
settled:

- the windows agree: the first and the second half of the windows differ by
  less than ``3.29`` standard errors of their difference (a two-sided test at
  0.1%, so that a full spectrum of hundreds of exponents is not flagged by
  chance alone) or by less than ``atol``;
- no drift: the running estimate at half time lies within the same bound of
  the final one (it is the first half's average, so this is the same test seen
  from the running estimate, which is what a plot of it shows);
- the windows are independent: ``rho`` is below ``3.29 / sqrt(B (W - 1))``.
  Strongly correlated windows mean the dynamics vary on time scales close to
  the run's length (intermittency, a long transient), where no interval from
  this run can be trusted.

None of this can see variation slower than the run itself: a run that sits in
a transient all along looks settled. That is what the warm-up is for, and why
it defaults to as many steps as are measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rnngrad._types import FloatArray

__all__ = ["WINDOWS", "WindowStatistics", "student_t_975", "window_boundaries", "window_statistics"]

#: Windows along the measured steps for the batch-means interval.
WINDOWS = 10


# Two-sided 95% quantiles of Student's t, t_{0.975, df} for df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def student_t_975(df: int) -> float:
    """``t_{0.975, df}``; the normal 1.960 beyond 30 degrees of freedom (within 2%)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return _T975[df - 1] if df <= 30 else 1.960


# z_{0.9995}: a two-sided 0.1% test for the agreement of the two halves, and a
# one-sided 0.05% test for correlated windows.
HALVES_Z = 3.29

# Window correlations are clipped here before the variance is inflated (19-fold at most).
MAX_CORRELATION = 0.9


@dataclass(frozen=True)
class WindowStatistics:
    """What the windows say about ``k`` time averages.

    Attributes:
        ci95: ``(k,)`` the half-width of the 95% interval: the larger of the
            batch-means interval and the interval across trajectories.
        ci95_windows: ``(k,)`` the batch-means interval alone.
        ci95_trajectories: ``(k,)`` the interval across trajectories alone
            (NaN for one trajectory).
        halves: ``(2, k)`` the averages over the first and the second half of
            the windows (all trajectories).
        halves_agree: ``(k,)`` the two halves agree (see the module docstring).
        window_means: ``(W, B, k)`` each window's average.
        correlation: ``(k,)`` the lag-1 autocorrelation of the window means
            along each trajectory (pooled over trajectories).
        windows_independent: ``(k,)`` that correlation is not significant: the
            windows are longer than the correlation time.
    """

    ci95: FloatArray
    ci95_windows: FloatArray
    ci95_trajectories: FloatArray
    halves: FloatArray
    halves_agree: NDArray[np.bool_]
    window_means: FloatArray
    correlation: FloatArray
    windows_independent: NDArray[np.bool_]


def _lag_one_correlation(means: FloatArray) -> FloatArray:
    """``(k,)`` the lag-1 autocorrelation of the window means along each trajectory,
    pooled over trajectories, about the mean of all windows: trajectories that
    differ for longer than a window count as correlation too (and centring each
    trajectory on its own mean of ten windows would bias the estimate low)."""
    centred = means - means.mean(axis=(0, 1), keepdims=True)
    numerator = (centred[1:] * centred[:-1]).sum(axis=(0, 1))
    denominator = (centred * centred).sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation: FloatArray = np.where(denominator > 0, numerator / denominator, 0.0)
    return correlation


def window_statistics(
    sums: FloatArray, edges: NDArray[np.int64], *, atol: float = 1e-3
) -> WindowStatistics:
    """Intervals and agreement of time averages from cumulative sums at window edges.

    Args:
        sums: ``(W + 1, B, k)`` the cumulative sums ``sum_{t < e_w}`` at the
            edges ``e_0 = 0 < e_1 < ... < e_W = T`` (the first row is zeros).
        edges: ``(W + 1,)`` the edges in steps.
        atol: differences smaller than this never count as disagreement.

    Returns:
        The statistics; NaN intervals where the values are not finite or
        there is only one window and one trajectory.
    """
    sums = np.asarray(sums, dtype=np.float64)
    lengths = np.diff(np.asarray(edges, dtype=np.float64))
    windows, batch, count = sums.shape[0] - 1, sums.shape[1], sums.shape[2]
    with np.errstate(invalid="ignore"):  # -inf - -inf: an exact zero has no spread
        means = np.diff(sums, axis=0) / lengths[:, None, None]
        overall = sums[-1] / float(edges[-1])
        if batch > 1:
            spread = overall.std(axis=0, ddof=1)
            across = student_t_975(batch - 1) * spread / math.sqrt(batch)
        else:
            across = np.full(count, np.nan)
        draws = means.reshape(windows * batch, count)
        if windows > 2:
            correlation = _lag_one_correlation(means)
            independent = correlation <= HALVES_Z / math.sqrt(batch * (windows - 1))
        else:
            correlation = np.zeros(count)
            independent = np.ones(count, dtype=bool)
        # Correlated windows carry less information than their number says: the
        # variance of their mean grows by (1 + rho) / (1 - rho) for an AR(1) sequence.
        rho = np.clip(correlation, 0.0, MAX_CORRELATION)
        inflation = (1.0 + rho) / (1.0 - rho)
        if draws.shape[0] > 1:
            along = student_t_975(draws.shape[0] - 1) * draws.std(axis=0, ddof=1)
            along = along * np.sqrt(inflation / draws.shape[0])
        else:
            along = np.full(count, np.nan)
        ci95 = np.fmax(across, along)  # fmax: a NaN on one side leaves the other
        half = windows // 2
        if half >= 1:
            first, second = means[:half].reshape(-1, count), means[half:].reshape(-1, count)
            halves = np.stack([first.mean(axis=0), second.mean(axis=0)])
            variance = first.var(axis=0, ddof=1) / first.shape[0] if first.shape[0] > 1 else 0.0
            variance = variance + (
                second.var(axis=0, ddof=1) / second.shape[0] if second.shape[0] > 1 else 0.0
            )
            difference = np.abs(halves[0] - halves[1])
            tolerance = HALVES_Z * np.sqrt(variance * inflation)
            agree = (difference <= tolerance) | (difference <= atol)
        else:
            halves = np.stack([overall.mean(axis=0), overall.mean(axis=0)])
            agree = np.ones(count, dtype=bool)
    agree = agree & np.isfinite(halves).all(axis=0)
    return WindowStatistics(
        ci95=ci95,
        ci95_windows=along,
        ci95_trajectories=across,
        halves=halves,
        halves_agree=agree,
        window_means=means,
        correlation=correlation,
        windows_independent=independent,
    )


def window_boundaries(steps: int, checkpoints: int) -> tuple[set[int], list[int]]:
    """Checkpoint steps of the running estimate, and the window edges (``0`` first)."""
    every = max(1, steps // max(1, checkpoints))
    marks = {*range(every, steps + 1, every), steps}
    windows = min(WINDOWS, steps)
    edges = sorted({round(w * steps / windows) for w in range(windows + 1)})
    return marks, edges
