r"""Exact Lyapunov exponents of diagonal recurrences, without QR.

When the state Jacobian is diagonal, ``dh_t/dh_{t-1} = diag(a_t)`` (the LRU's fixed
``lambda``, minGRU's ``1 - z_t``, a selective scan's ``exp(Delta_t A)``, IndRNN's
``u relu'(.)``), the product over a trajectory is diagonal too and each mode is its
own Oseledets direction:

.. math:: \lambda_j = \lim_{T \to \infty} \frac{1}{T} \sum_{t=1}^{T} \ln |a_{t,j}|.

So the exponents are time averages of ``ln |a_{t,j}|``, one per mode, computed exactly
along the trajectory (a complex mode of a real-form state counts twice, for its real
and imaginary parts, as the QR route counts it). No basis has to align with the
modes, which is what makes the QR method slow and biased on near-degenerate, slowly
decaying modes. The intervals come from the same batch means over windows as the
QR route's (:mod:`rnngrad.lyapunov.batch_means`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnngrad._types import FloatArray
from rnngrad.lyapunov.batch_means import window_boundaries, window_statistics
from rnngrad.lyapunov.dynamics import Dynamics
from rnngrad.lyapunov.result import LyapunovSpectrum, kaplan_yorke_dimension
from rnngrad.lyapunov.trajectory import DrivingInputs, MeasuredSystem, check_finite

__all__ = ["diagonal_log_moduli", "exact_diagonal_spectrum", "exponents_from_log_moduli"]


def diagonal_log_moduli(layer: Any, inputs: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """``ln |a_{t,j}|`` ``(T, B, n)`` of a diagonal recurrence driven by ``inputs``
    ``(T, B, D)`` from ``h0`` ``(B, N)``, in float64; ``n = 2N`` for a complex state
    (each mode's value for its real and its imaginary part)."""
    with torch.no_grad():
        states = layer(inputs, h0)
        coefficients = layer.state_jacobian(inputs, states, h0)
        logs = torch.log(coefficients.abs().double())
        logs = logs.expand(inputs.shape[0], inputs.shape[1], layer.state_size)
        if layer.complex_state:
            logs = torch.cat([logs, logs], dim=-1)
    return logs


def _state_of(layer: Any, flat: torch.Tensor) -> torch.Tensor:
    """The layer's state from the flat real one of its dynamics."""
    if not layer.complex_state:
        return flat
    size = layer.state_size
    return torch.complex(flat[..., :size], flat[..., size:])


def exact_diagonal_spectrum(
    layer: Any,
    chosen: MeasuredSystem,
    *,
    steps: int,
    warmup: int,
    batch: int,
    count: int,
    checkpoints: int,
    generator: torch.Generator,
    boundaries: tuple[set[int], list[int]],
) -> LyapunovSpectrum:
    """The exponents of ``layer`` (a :class:`~rnngrad.modern.base.DiagonalRecurrence`)
    as time averages of ``ln |a_{t,j}|`` over ``steps`` steps after ``warmup``, from
    ``batch`` random initial states; the ``count`` largest modes, in descending order
    of their batch mean."""
    dynamics: Dynamics = chosen.dynamics
    source = DrivingInputs(chosen.inputs, dynamics, batch, warmup + steps, generator)
    with torch.no_grad():
        state = dynamics.initial_state(batch, generator)
        for t in range(warmup):
            state, _ = dynamics.step(state, source(t))
        check_finite(state, warmup)
        sequence = torch.stack([source(warmup + t) for t in range(steps)])
        logs = diagonal_log_moduli(layer, sequence, _state_of(layer, state))
    return exponents_from_log_moduli(
        logs.cpu().numpy(), count=count, boundaries=boundaries, warmup=warmup,
        module_name=chosen.module_name, layer=chosen.layer, direction=chosen.direction,
        dtype=str(dynamics.dtype).removeprefix("torch."), converted_from=chosen.converted_from,
    )  # fmt: skip


def exponents_from_log_moduli(
    values: FloatArray,
    *,
    count: int | None = None,
    boundaries: tuple[set[int], list[int]] | None = None,
    warmup: int = 0,
    module_name: str = "",
    layer: int | None = None,
    direction: int = 0,
    dtype: str = "float64",
    converted_from: str | None = None,
) -> LyapunovSpectrum:
    """The exponents of a diagonal recurrence from its ``ln |a_{t,b,j}|`` ``(T, B, n)``
    along ``B`` trajectories: each mode's time average, the ``count`` largest (all by
    default) in descending order of their batch mean, with batch-means intervals over
    the windows ``boundaries`` (the running estimate's checkpoints and the window
    edges; by default 100 checkpoints and ten windows)."""
    steps, batch, size = values.shape
    count = size if count is None else count
    marks, edges = window_boundaries(steps, 100) if boundaries is None else boundaries
    means = values.mean(axis=(0, 1))
    order = np.argsort(-np.nan_to_num(means, nan=-np.inf), kind="stable")[:count]
    chosen_values = values[:, :, order]
    cumulative = np.concatenate(
        [np.zeros((1, batch, count)), np.cumsum(chosen_values, axis=0)], axis=0
    )  # (T + 1, B, k)
    windows = window_statistics(cumulative[np.asarray(edges)], np.asarray(edges, np.int64))
    per_trajectory = cumulative[-1] / steps
    exponents = per_trajectory.mean(axis=0)
    exact_zero = np.isneginf(exponents)
    ci95 = windows.ci95.copy()
    ci95[exact_zero | ~np.isfinite(ci95)] = np.nan
    running_steps = np.asarray(sorted(marks), dtype=np.int64)
    running = cumulative[running_steps].mean(axis=1) / running_steps[:, None]
    return LyapunovSpectrum(
        exponents=exponents,
        per_trajectory=per_trajectory,
        ci95=ci95,
        total=float(exponents.sum()),
        kaplan_yorke_dim=kaplan_yorke_dimension(exponents, complete=count == size),
        lambda1_two_trajectories=float(exponents[0]),
        running_steps=running_steps,
        running=running,
        reliable=np.isfinite(exponents) & windows.halves_agree & windows.windows_independent,
        steps=steps,
        warmup=warmup,
        reorth="none",
        batch=batch,
        state_size=size,
        module_name=module_name,
        layer=layer,
        direction=direction,
        dtype=dtype,
        converted_from=converted_from,
        exact_zero=exact_zero,
        factorisations=0,
        qr="none",
        ci95_trajectories=windows.ci95_trajectories,
        ci95_windows=windows.ci95_windows,
        halves=windows.halves,
        method="exact diagonal",
    )
