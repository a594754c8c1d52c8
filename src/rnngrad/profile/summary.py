"""The summary numbers of a profile: per-sequence norms to batch means, the decay rate,
the horizon and the verdict, the same way for every route that computes the gradients.

The summaries judge each direction in its own backpropagation order, and they judge
the gradient *carried* back (:mod:`rnngrad.profile.carried`) where a route gives it:
the product of the step Jacobians applied to the gradient where the loss enters, the
quantity of the textbook's derivation, whatever the loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray

from rnngrad._types import FloatArray
from rnngrad.profile.carried import CarriedNorms
from rnngrad.profile.result import LayerProfile
from rnngrad.verdict import RATE_TOLERANCE, gradient_horizon, growth_verdict

__all__ = ["gradient_norms", "summarise"]


def _fit_decay_rate(log_norms: FloatArray) -> float | None:
    """Slope of a least-squares line through the finite ``ln`` norms, per step."""
    steps = np.arange(log_norms.size, dtype=np.float64)
    finite = np.isfinite(log_norms)
    if finite.sum() < 2:
        return None
    slope, _ = np.polyfit(steps[finite], log_norms[finite], 1)
    return float(slope)


def _valid_steps(batch: int, steps: int, lengths: NDArray[np.int64] | None) -> NDArray[np.bool_]:
    """``(B, T)``: ``True`` where sequence ``b`` has step ``t``."""
    if lengths is None:
        return np.ones((batch, steps), dtype=bool)
    valid: NDArray[np.bool_] = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
    return valid


def _masked_mean(values: FloatArray, valid: NDArray[np.bool_], empty: float = 0.0) -> FloatArray:
    """The mean over the valid entries of each column (NaN and inf propagate); ``empty``
    where a column has none."""
    total = np.where(valid, values, 0.0).sum(axis=0)
    count = valid.sum(axis=0)
    mean: FloatArray = np.where(count > 0, total / np.maximum(count, 1), empty)
    return mean


def _in_processing_order(
    values: FloatArray, direction: int, lengths: NDArray[np.int64] | None
) -> FloatArray:
    """``(B, T)`` per-sequence values in the direction's processing order, padding last."""
    if direction == 0:
        return values
    if lengths is None:
        return values[:, ::-1]
    steps = values.shape[1]
    position = np.arange(steps)[None, :]
    length = np.asarray(lengths)[:, None]
    index = np.where(position < length, length - 1 - position, position)
    ordered: FloatArray = np.take_along_axis(values, index, axis=1)
    return ordered


def summarise(
    layer: int,
    direction: int,
    grad_norm: FloatArray,
    saturation: float,
    *,
    cell_grad_norm: FloatArray | None = None,
    carried: CarriedNorms | None = None,
    lengths: NDArray[np.int64] | None = None,
    tolerance: float = RATE_TOLERANCE,
    grad: torch.Tensor | None = None,
    grad_c: torch.Tensor | None = None,
) -> LayerProfile:
    """Summary numbers of one layer and direction from its per-sequence norms.

    The ratio, decay rate, horizon and verdict are read from the carried gradient's
    norm over the whole state (``carried``); a route that gives none is judged on the
    total gradient at ``h``, which is the carried one when the loss enters at one step.

    Args:
        grad_norm: ``(B, T)`` total ``||dL/dh_t||`` in input order (padding ignored).
        cell_grad_norm: ``(B, T)`` total ``||dL/dc_t||`` of an LSTM, or ``None``.
        carried: the carried gradient's norms, or ``None``.
        lengths: ``(B,)`` each sequence's length, ``None`` for all ``T``.
    """
    batch, steps = grad_norm.shape
    valid = _valid_steps(batch, steps, lengths)
    grad_norm = np.where(valid, grad_norm, np.nan)
    mean = _masked_mean(grad_norm, valid)
    with np.errstate(divide="ignore", invalid="ignore"):
        log10_mean = np.log10(mean)
    processing_mean = _masked_mean(
        _in_processing_order(grad_norm, direction, lengths), _valid_steps(batch, steps, lengths)
    )
    if carried is None:
        last = np.where(valid, np.arange(steps)[None, :], -1).max(axis=1)
        source = np.where(last >= 0, last + 1, 0) if direction == 0 else np.where(last >= 0, 1, 0)
        carried = CarriedNorms(grad_norm, None, valid, source.astype(np.int64))
    covered = carried.covered & valid
    state = np.where(covered, carried.state, np.nan)
    carried_mean = _masked_mean(state, covered, np.nan)
    in_order = _in_processing_order(state, direction, lengths)
    covered_in_order = _in_processing_order(covered.astype(np.float64), direction, lengths) > 0
    carried_processing = _masked_mean(in_order, covered_in_order, np.nan)
    span = int(covered_in_order.any(axis=0).nonzero()[0].max()) + 1 if covered.any() else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log10_processing = np.log10(carried_processing[:span])
    nonfinite = np.flatnonzero(
        ((valid & ~np.isfinite(grad_norm)) | (covered & ~np.isfinite(state))).any(axis=0)
    )
    first_nonfinite = int(nonfinite[0]) + 1 if nonfinite.size else None
    usable = np.where(
        np.isfinite(log10_processing) | np.isneginf(log10_processing), log10_processing, np.nan
    )
    log10_ratio: float | None = None
    if span >= 2:  # one step alone has no recurrence to judge
        first, final = usable[0], usable[-1]
        if not (np.isnan(first) or np.isnan(final) or np.isneginf(final)):
            log10_ratio = float(first - final)
    decay_rate = _fit_decay_rate(np.where(np.isnan(usable), -np.inf, usable) * math.log(10.0))
    if first_nonfinite is not None:
        verdict = growth_verdict(math.inf, max(span, steps) - 1, tolerance=tolerance)
    elif decay_rate is not None:
        change = -decay_rate * (span - 1) / math.log(10.0)
        verdict = growth_verdict(change, span - 1, tolerance=tolerance)
    elif log10_ratio is not None and log10_ratio == -math.inf:
        verdict = growth_verdict(-math.inf, span - 1, tolerance=tolerance)
    else:  # the loss reaches at most one step of this direction: nothing to backpropagate
        verdict = growth_verdict(0.0, 0, tolerance=tolerance)
    horizon_input = np.where(np.isnan(log10_processing), -np.inf, log10_processing)
    mean_cell = None
    if cell_grad_norm is not None:
        cell_grad_norm = np.where(valid, cell_grad_norm, np.nan)
        mean_cell = _masked_mean(cell_grad_norm, valid)
    carried_c = None
    if carried.c is not None:  # NaN where no sequence's carried gradient covers t, as at h
        carried_c = _masked_mean(np.where(covered, carried.c, np.nan), covered, np.nan)
    return LayerProfile(
        layer=layer,
        direction=direction,
        grad_norm=grad_norm,
        mean_grad_norm=mean,
        log10_grad_norm=log10_mean,
        processing_mean_grad_norm=processing_mean,
        cell_grad_norm=cell_grad_norm,
        mean_cell_grad_norm=mean_cell,
        log10_ratio=log10_ratio,
        decay_rate=decay_rate,
        horizon=gradient_horizon(horizon_input) if span else None,
        saturation=saturation,
        verdict=verdict,
        first_nonfinite_step=first_nonfinite,
        carried_norm=state,
        mean_carried_norm=carried_mean,
        mean_carried_h_norm=_masked_mean(np.where(covered, carried.h, np.nan), covered, np.nan),
        mean_carried_c_norm=carried_c,
        processing_mean_carried_norm=carried_processing,
        carried_from=carried.source,
        grad=grad,
        grad_c=grad_c,
    )


def gradient_norms(grad: torch.Tensor) -> FloatArray:
    """``(T, B, F)`` gradients to ``(B, T)`` float64 norms.

    The norm is taken in the gradient's own dtype (fast) and again in float64
    only where that overflowed although the entries were finite.
    """
    norms = torch.linalg.vector_norm(grad, dim=2)
    if grad.dtype != torch.float64 and not torch.isfinite(norms).all():
        norms = torch.linalg.vector_norm(grad, dim=2, dtype=torch.float64)
    result: FloatArray = norms.T.to(torch.float64).cpu().numpy()
    return result
