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
from rnngrad.verdict import GrowthVerdict

__all__ = [
    "GradientProfile",
    "LayerProfile",
    "LossSpec",
    "cells_profile",
    "profile_figure",
    "profile_traces",
]

LossSpec = Literal["last", "sum"] | Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class LayerProfile:
    """The gradient profile of one layer and direction.

    Arrays are indexed by input position ``t = 1..T`` (entry ``t-1``) for both
    directions. ``grad_norm`` and its means are the *total* gradient, which says
    where the loss enters; the summaries judge the gradient *carried* back from
    each sequence's last loss-bearing step ``s*`` (:mod:`rnngrad.profile.carried`).
    The summaries (``log10_ratio``, ``decay_rate``, ``horizon``, ``verdict``) follow
    the direction's own processing order ``s = 1..T`` (``t = s`` forward,
    ``t = T + 1 - s`` reverse; per sequence ``t = len_b + 1 - s``), computed from
    ``processing_mean_carried_norm`` over ``s = 1..s*``.

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
        log10_ratio: ``log10 ||g~_{s=1}|| / ||g~_{s*}||`` of the carried gradient
            over the whole state, in processing order; ``None`` when it is 0 at
            ``s*`` (no loss gradient reaches the direction) or not finite.
        decay_rate: of the carried gradient, nats per processing step, ``None``
            with fewer than two nonzero steps.
        horizon: processing steps back from ``s*``, or ``None`` for "beyond".
        saturation: share of saturated nonlinearity derivatives (below 10% of max).
        verdict: the growth rule on the carried gradient's fitted change.
        first_nonfinite_step: first input position whose gradient (total or
            carried) is NaN or infinite, or ``None``.
        carried_norm: ``(B, T)``, the carried gradient's norm over the whole state
            (``sqrt(||g~_h||^2 + ||g~_c||^2)`` for LSTM) per sequence; NaN at the
            steps it does not cover (after ``s*``, padding).
        mean_carried_norm: ``(T,)`` its mean over the sequences that cover ``t``
            (NaN where none does).
        mean_carried_h_norm, mean_carried_c_norm: ``(T,)`` the same at ``h`` and,
            for LSTM, at ``c`` (else ``None``).
        processing_mean_carried_norm: ``(T,)`` the mean in processing order, the
            series the summaries are read from.
        carried_from: ``(B,)`` the input position of each sequence's last
            loss-bearing step, where the carried gradient starts (0: none).
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
    carried_norm: FloatArray
    mean_carried_norm: FloatArray
    mean_carried_h_norm: FloatArray
    mean_carried_c_norm: FloatArray | None
    processing_mean_carried_norm: FloatArray
    carried_from: NDArray[np.int64]
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

    @property
    def carried_by(self) -> str:
        """``"c"`` when an LSTM's cell state carries more of the gradient than ``h`` at
        the first processed step, else ``"h"``."""
        cell = self.mean_carried_c_norm
        if cell is None:
            return "h"
        first = self.position_of(1) - 1
        return "c" if cell[first] > self.mean_carried_h_norm[first] else "h"

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


def cells_profile(
    layers: list[LayerProfile],
    *,
    names: list[str],
    model: Any,
    loss: LossSpec,
    value: torch.Tensor,
    dtype: torch.dtype,
    input_size: int,
    hidden_size: int,
    batch_first: bool,
) -> GradientProfile:
    """The profile of recurrences read one layer per cell (xLSTM's cells, rate networks):
    a ``"custom"`` layout, every sequence of full length."""
    steps, batch = int(layers[0].grad_norm.shape[1]), int(layers[0].grad_norm.shape[0])
    layout = RecurrentLayout(
        kind="custom", input_size=input_size, hidden_size=hidden_size, proj_size=0,
        num_layers=len(layers), bidirectional=False, batch_first=batch_first, bias=True,
        dropout=0.0,
    )  # fmt: skip
    return GradientProfile(
        layout=layout,
        module_name=names[0] if len(names) == 1 else type(model).__name__,
        steps=steps,
        batch=batch,
        loss=loss if isinstance(loss, str) else "custom",
        loss_value=float(value.detach()),
        dtype=str(dtype).removeprefix("torch."),
        layers=tuple(layers),
        lengths=np.full(batch, steps, dtype=np.int64),
    )


def profile_traces(
    profile: GradientProfile, name_of: Callable[[LayerProfile], str] | None = None
) -> list[Trace]:
    """Per layer and direction: the total ``||dL/dh_t||`` (where the loss enters), the
    gradient carried back from the last loss-bearing step (dotted) with its fitted decay
    (dashed), and the horizon (a marker). Fit and horizon follow the direction's own
    processing order (``t = T..1`` forward, ``t = 1..T`` reverse) and are drawn at the
    input positions they belong to. The carried trace is left out where it equals the
    total (the loss enters at one step, the state is ``h`` alone)."""
    traces = []
    for layer in profile.layers:
        label = shown(name_of(layer) if name_of else layer.name)
        steps = list(range(1, layer.mean_grad_norm.size + 1))
        norms = layer.mean_grad_norm
        traces.append(Trace(label, steps, list(norms), group=label))
        carried = layer.mean_carried_norm
        covered = ~np.isnan(carried)
        if not np.array_equal(carried[covered], norms[covered]) or not covered.all():
            traces.append(
                Trace(
                    t("{name}: carried back", name=label),
                    steps,
                    list(carried),
                    dash=True,
                    group=label,
                )
            )
        processing = layer.processing_mean_carried_norm
        span = int(np.flatnonzero(~np.isnan(processing)).max()) + 1 if covered.any() else 0
        processing = processing[:span]
        positive = processing > 0
        logs = np.log(processing, where=positive, out=np.full(processing.size, -np.inf))
        finite = np.isfinite(logs)
        fit_steps = np.arange(1, span + 1)
        positions = [layer.position_of(int(s)) for s in fit_steps]
        if layer.decay_rate is not None and finite.sum() >= 2:
            slope, intercept = np.polyfit(fit_steps[finite], logs[finite], 1)
            fitted = np.exp(intercept + slope * fit_steps.astype(float))
            fit = t("{name}: fit, {rate} nats/step", name=label, rate=f"{layer.decay_rate:.3g}")
            traces.append(Trace(fit, positions, list(fitted), dash=True, group=label))
        if layer.horizon is not None and span:
            at = layer.position_of(span - layer.horizon)
            mark = t("{name}: horizon ({steps} steps back)", name=label, steps=layer.horizon)
            traces.append(Trace(mark, [at], [float(carried[at - 1])], "markers", group=label))
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
        integer_x=True,
    )
