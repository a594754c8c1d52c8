"""The result of a gradient profile and the summary numbers drawn from it.

:class:`LayerProfile` holds one layer and direction's per-step gradient norms and
their summaries; :class:`GradientProfile` holds every layer of one module.
:func:`summarise` turns per-sequence norms into the summaries, the same way for
every route that computes the gradients (the fused recursion of
:mod:`rnngrad.profile.front`, the probes of :mod:`rnngrad.profile.stepped`, the custom-cell
loop). The summaries judge each direction in its own backpropagation order; see
:mod:`rnngrad.profile.front` for the definitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from rnngrad._types import FloatArray
from rnngrad.cells import RecurrentLayout
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import shown, t
from rnngrad.verdict import RATE_TOLERANCE, GrowthVerdict, gradient_horizon, growth_verdict

__all__ = [
    "GradientProfile",
    "LayerProfile",
    "LossSpec",
    "gradient_norms",
    "profile_figure",
    "profile_traces",
    "summarise",
]

LossSpec = Literal["last", "sum"] | Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class LayerProfile:
    """The gradient profile of one layer and direction.

    Arrays are indexed by input position ``t = 1..T`` (entry ``t-1``) for both
    directions. The summaries (``log10_ratio``, ``decay_rate``, ``horizon``,
    ``verdict``) follow the direction's own processing order ``s = 1..T``
    (``t = s`` forward, ``t = T + 1 - s`` reverse; per sequence ``t = len_b + 1 - s``),
    computed from ``processing_mean_grad_norm``.

    Attributes:
        layer: 0-based layer index.
        direction: 0 forward, 1 reverse.
        grad_norm: ``(B, T)``, ``||dL/dh_t||_2`` per sequence; NaN at padding
            steps ``t > len_b`` of a packed batch.
        mean_grad_norm: ``(T,)``, the mean of ``grad_norm`` over the sequences
            that have step ``t``.
        log10_grad_norm: ``(T,)``, ``log10`` of ``mean_grad_norm`` (``-inf`` for 0).
        processing_mean_grad_norm: ``(T,)``, the same mean in processing order
            (the reverse of ``mean_grad_norm`` for a reverse direction of equal
            lengths).
        cell_grad_norm: ``(B, T)``, ``||dL/dc_t||_2`` for LSTM, else ``None``.
        mean_cell_grad_norm: ``(T,)`` or ``None``.
        log10_ratio: ``log10 ||dL/dh_{s=1}|| / ||dL/dh_{s=T}||`` in processing
            order; ``None`` when the gradient at ``s = T`` is 0 (no loss gradient
            reaches it) or not finite.
        decay_rate: nats per processing step, ``None`` with fewer than two nonzero steps.
        horizon: processing steps back from ``s = T``, or ``None`` for "beyond T".
        saturation: share of saturated nonlinearity derivatives (below 10% of max).
        verdict: the growth rule on the fitted change.
        first_nonfinite_step: first input position whose gradient is NaN or
            infinite, or ``None``.
        grad: ``(B, T, P)`` the gradients themselves when asked for, else ``None``.
        grad_c: ``(B, T, H)`` for LSTM when asked for, else ``None``.
    """

    layer: int
    direction: int
    grad_norm: FloatArray
    mean_grad_norm: FloatArray
    log10_grad_norm: FloatArray
    processing_mean_grad_norm: FloatArray
    cell_grad_norm: FloatArray | None
    mean_cell_grad_norm: FloatArray | None
    log10_ratio: float | None
    decay_rate: float | None
    horizon: int | None
    saturation: float
    verdict: GrowthVerdict
    first_nonfinite_step: int | None
    grad: torch.Tensor | None = None
    grad_c: torch.Tensor | None = None

    @property
    def name(self) -> str:
        """``"layer 0"`` or ``"layer 0 reverse"``."""
        return f"layer {self.layer}" + (" reverse" if self.direction else "")

    @property
    def summary_order(self) -> str:
        """The order the summaries follow, in words."""
        return "t = 1..T (reverse direction)" if self.direction else "t = T..1 (forward direction)"

    def position_of(self, processing_step: int) -> int:
        """The input position ``t`` of processing step ``s`` (both 1-based, equal lengths)."""
        steps = self.mean_grad_norm.size
        return steps + 1 - processing_step if self.direction else processing_step


@dataclass(frozen=True, repr=False)
class GradientProfile(Displayable):
    """Per-time-step gradients of every layer and direction of one model on one batch.

    Attributes:
        layout: the recurrent module's shape.
        module_name: its name inside the model (``""`` for the model itself).
        steps: ``T``; ``batch``: ``B`` (1 for unbatched input).
        loss: ``"last"``, ``"sum"`` or ``"custom"``.
        loss_value: the loss.
        dtype: the model's dtype name.
        layers: one :class:`LayerProfile` per layer and direction, in the
            order ``(layer 0, dir 0), (layer 0, dir 1), (layer 1, dir 0), ...``.
        lengths: ``(B,)`` each sequence's length (all ``T`` unless packed).
        calls: how many times the module was called in the forward pass (more
            than one for a cell in a loop or a decoder that steps a module; the
            steps ``1..T`` are then the calls' steps in call order).
        source_dtype: what the model itself runs in when the profile was computed
            in another dtype (``"float16"``, ``"autocast bfloat16"``), else ``None``.
        precision_note: where that reduced dtype flushes gradients to zero, or ``None``.
    """

    layout: RecurrentLayout
    module_name: str
    steps: int
    batch: int
    loss: str
    loss_value: float
    dtype: str
    layers: tuple[LayerProfile, ...]
    lengths: NDArray[np.int64]
    calls: int = 1
    source_dtype: str | None = None
    precision_note: str | None = None

    @property
    def packed(self) -> bool:
        """The sequences have different lengths (or came packed)."""
        return bool((self.lengths != self.steps).any())

    @property
    def sequences_per_step(self) -> NDArray[np.int64]:
        """``(T,)`` how many sequences have step ``t``: the count behind each batch mean."""
        steps = np.arange(1, self.steps + 1)
        counts: NDArray[np.int64] = (self.lengths[None, :] >= steps[:, None]).sum(axis=1)
        return counts

    def layer(self, layer: int, direction: int = 0) -> LayerProfile:
        """The profile of one layer and direction."""
        return self.layers[layer * self.layout.num_directions + direction]

    def _summary(self) -> Summary:
        labels = {lp.verdict.label for lp in self.layers}
        verdict = labels.pop() if len(labels) == 1 else "mixed"
        module = f" ({self.module_name})" if self.module_name else ""
        numbers: list[tuple[str, str]] = [("loss", f"{self.loss} = {number(self.loss_value)}")]
        for lp in self.layers:
            horizon = "beyond T" if lp.horizon is None else f"{lp.horizon} steps"
            numbers.append((
                lp.name,
                f"{lp.verdict.label}; log10 ratio {number(lp.log10_ratio)}, decay "
                f"{number(lp.decay_rate)} nats/step, horizon {horizon}, "
                f"saturation {lp.saturation:.0%}",
            ))  # fmt: skip
        return Summary(
            what=f"gradient profile of {self.layout.kind}{module}, T = {self.steps}, "
            f"batch {self.batch}",
            verdict=verdict,
            sentence=" ".join(f"{lp.name}: {lp.verdict.sentence}" for lp in self.layers),
            numbers=tuple(numbers),
        )

    def _columns(self) -> dict[str, Any]:
        """One row per layer, direction and input position ``t``."""
        columns: dict[str, list[Any]] = {name: [] for name in (
            "layer", "direction", "name", "t", "mean_grad_norm", "log10_grad_norm",
            "mean_cell_grad_norm", "sequences")}  # fmt: skip
        counts = self.sequences_per_step
        for lp in self.layers:
            steps = lp.mean_grad_norm.size
            columns["layer"] += [lp.layer] * steps
            columns["direction"] += ["reverse" if lp.direction else "forward"] * steps
            columns["name"] += [lp.name] * steps
            columns["t"] += list(range(1, steps + 1))
            columns["mean_grad_norm"] += list(lp.mean_grad_norm)
            columns["log10_grad_norm"] += list(lp.log10_grad_norm)
            cell = lp.mean_cell_grad_norm
            columns["mean_cell_grad_norm"] += [None] * steps if cell is None else list(cell)
            columns["sequences"] += list(counts)
        return columns

    def _figure(self, which: str | None = None) -> Figure:

        return profile_figure(self)


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


def _masked_mean(values: FloatArray, valid: NDArray[np.bool_]) -> FloatArray:
    """The mean over the valid entries of each column (NaN and inf propagate)."""
    total = np.where(valid, values, 0.0).sum(axis=0)
    count = valid.sum(axis=0)
    mean: FloatArray = total / np.maximum(count, 1)
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
    lengths: NDArray[np.int64] | None = None,
    tolerance: float = RATE_TOLERANCE,
    grad: torch.Tensor | None = None,
    grad_c: torch.Tensor | None = None,
) -> LayerProfile:
    """Summary numbers of one layer and direction from its per-sequence norms.

    Args:
        grad_norm: ``(B, T)`` in input order (padding steps ignored).
        lengths: ``(B,)`` each sequence's length, ``None`` for all ``T``.
    """
    batch, steps = grad_norm.shape
    valid = _valid_steps(batch, steps, lengths)
    grad_norm = np.where(valid, grad_norm, np.nan)
    mean = _masked_mean(grad_norm, valid)
    with np.errstate(divide="ignore", invalid="ignore"):
        log10_mean = np.log10(mean)
    processing = _in_processing_order(grad_norm, direction, lengths)
    processing_mean = _masked_mean(processing, _valid_steps(batch, steps, lengths))
    with np.errstate(divide="ignore", invalid="ignore"):
        log10_processing = np.log10(processing_mean)
    nonfinite = np.flatnonzero((valid & ~np.isfinite(grad_norm)).any(axis=0))
    first_nonfinite = int(nonfinite[0]) + 1 if nonfinite.size else None
    usable = np.where(
        np.isfinite(log10_processing) | np.isneginf(log10_processing), log10_processing, np.nan
    )
    first, last = usable[0], usable[-1]
    log10_ratio: float | None
    if np.isnan(first) or np.isnan(last) or np.isneginf(last):
        log10_ratio = None
    else:
        log10_ratio = float(first - last)
    decay_rate = _fit_decay_rate(np.where(np.isnan(usable), -np.inf, usable) * math.log(10.0))
    if first_nonfinite is not None:
        verdict = growth_verdict(math.inf, steps - 1, tolerance=tolerance)
    elif decay_rate is not None:
        change = -decay_rate * (steps - 1) / math.log(10.0)
        verdict = growth_verdict(change, steps - 1, tolerance=tolerance)
    elif log10_ratio is not None and log10_ratio == -math.inf:
        verdict = growth_verdict(-math.inf, steps - 1, tolerance=tolerance)
    else:  # the loss reaches at most one step of this direction: nothing to backpropagate
        verdict = growth_verdict(0.0, 0, tolerance=tolerance)
    horizon_input = np.where(np.isnan(log10_processing), -np.inf, log10_processing)
    mean_cell = None
    if cell_grad_norm is not None:
        cell_grad_norm = np.where(valid, cell_grad_norm, np.nan)
        mean_cell = _masked_mean(cell_grad_norm, valid)
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
        horizon=gradient_horizon(horizon_input),
        saturation=saturation,
        verdict=verdict,
        first_nonfinite_step=first_nonfinite,
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


def profile_traces(
    profile: GradientProfile, name_of: Callable[[LayerProfile], str] | None = None
) -> list[Trace]:
    """Per layer and direction: ``||dL/dh_t||``, its fitted decay (dashed) and the
    horizon (a marker). Fit and horizon follow the direction's own processing order
    (``t = T..1`` forward, ``t = 1..T`` reverse) and are drawn at the input positions
    they belong to."""
    traces = []
    for layer in profile.layers:
        label = shown(name_of(layer) if name_of else layer.name)
        steps = list(range(1, layer.mean_grad_norm.size + 1))
        norms = layer.mean_grad_norm
        traces.append(Trace(label, steps, list(norms)))
        processing = layer.processing_mean_grad_norm
        positive = processing > 0
        logs = np.log(processing, where=positive, out=np.full(processing.size, -np.inf))
        finite = np.isfinite(logs)
        positions = [layer.position_of(s) for s in steps]
        if layer.decay_rate is not None and finite.sum() >= 2:
            slope, intercept = np.polyfit(np.array(steps)[finite], logs[finite], 1)
            fitted = np.exp(intercept + slope * np.array(steps, dtype=float))
            fit = t("{name}: fit, {rate} nats/step", name=label, rate=f"{layer.decay_rate:.3g}")
            traces.append(Trace(fit, positions, list(fitted), dash=True))
        if layer.horizon is not None:
            at = layer.position_of(norms.size - layer.horizon)
            mark = t("{name}: horizon ({steps} steps back)", name=label, steps=layer.horizon)
            traces.append(Trace(mark, [at], [float(norms[at - 1])], "markers"))
    return traces


def profile_figure(profile: GradientProfile) -> Figure:
    """The per-time-step gradient ``||dL/dh_t||`` of every layer and direction."""
    return Figure(
        "gradient_profile",
        t("per-time-step gradient ||dL/dh_t||"),
        "t",
        "||dL/dh_t||",
        profile_traces(profile),
        log_y=True,
    )
