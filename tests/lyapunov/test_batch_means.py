"""Batch-means intervals and settling checks on processes with known answers."""

from __future__ import annotations

import numpy as np
import torch

from rnngrad.lyapunov.batch_means import window_statistics
from rnngrad.lyapunov.spectrum import lyapunov_spectrum, random_tanh_network


def _ar1(phi: float, seeds: int, batch: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """``(seeds, steps, batch)`` stationary AR(1) sequences, mean 0, variance 1."""
    out = np.empty((seeds, steps, batch))
    x = rng.standard_normal((seeds, batch))
    noise = rng.standard_normal((seeds, steps, batch)) * np.sqrt(1 - phi * phi)
    for t in range(steps):
        x = phi * x + noise[:, t]
        out[:, t] = x
    return out


def _statistics(values: np.ndarray, windows: int = 10):  # type: ignore[no-untyped-def]
    """window_statistics of one ``(steps, batch)`` sequence, as the QR loop records it."""
    steps = values.shape[0]
    edges = np.array([round(w * steps / windows) for w in range(windows + 1)])
    cumulative = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    return window_statistics(cumulative[edges][:, :, None], edges)


def test_white_noise_intervals_cover_the_mean_and_raise_few_alarms() -> None:
    """Independent steps: the 95% interval covers the true mean 0 in 90-99% of 300 runs,
    and the settling checks flag at most 3% of them."""
    rng = np.random.default_rng(0)
    runs = _ar1(0.0, 300, 4, 1000, rng)
    covered = alarms = 0
    for values in runs:
        stats = _statistics(values)
        covered += abs(values.mean()) <= stats.ci95[0]
        alarms += not (stats.halves_agree[0] and stats.windows_independent[0])
    assert 0.90 <= covered / 300 <= 0.99
    assert alarms / 300 <= 0.03


def test_slow_correlations_are_caught_and_widen_the_interval() -> None:
    """AR(1) with a correlation time of 500 steps in runs of 1000: trajectories cannot
    see it from their spread alone, but the windows are correlated; the flag catches most
    runs and the widened interval covers the mean far more often than the plain one."""
    rng = np.random.default_rng(1)
    runs = _ar1(0.998, 200, 4, 1000, rng)
    caught = covered = plain_covered = 0
    for values in runs:
        stats = _statistics(values)
        caught += not (stats.halves_agree[0] and stats.windows_independent[0])
        covered += abs(values.mean()) <= stats.ci95[0]
        draws = stats.window_means.reshape(-1)
        plain = 1.96 * draws.std(ddof=1) / np.sqrt(draws.size)
        plain_covered += abs(values.mean()) <= plain
    assert caught / 200 >= 0.8
    assert covered > plain_covered + 20


def test_a_drift_shared_by_every_trajectory_is_not_reliable() -> None:
    """All trajectories see the same input: strong drive (saturation, contraction) in the
    first half, none in the second. They agree with each other, so the interval across
    them is narrow, but the halves disagree and lambda_1 is flagged."""
    network = random_tanh_network(20, 1.8, seed=3)
    steps = 1000
    drive = torch.zeros(2 * steps, 1, dtype=torch.float64)
    drive[: steps + steps // 2] = 5.0
    network.weight_ih_l0.data.fill_(1.0)
    result = lyapunov_spectrum(
        network, steps=steps, inputs=drive, batch=4, k=2, seed=0, progress=False
    )
    assert result.warmup == steps  # the default warm-up is as long as the measurement
    first, second = result.halves[:, 0]
    assert first < second - 0.05
    assert not result.reliable[0]
    assert result.ci95_trajectories is not None
    assert result.ci95_trajectories[0] < abs(second - first) / 10


def test_a_stationary_chaotic_network_is_reliable() -> None:
    """An undriven network: chaotic, stationary, and every exponent is reliable."""
    network = random_tanh_network(40, 2.0, seed=2)
    result = lyapunov_spectrum(network, steps=2000, batch=4, seed=0, progress=False)
    assert result.exponents[0] > 0
    assert result.reliable.all()
