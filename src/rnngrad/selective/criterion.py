r"""The eigenvalue criterion, made selective.

The textbook reads the fate of the gradient off the eigenvalues of ``W_hh``: a mode
with ``|lambda| < 1`` forgets, one with ``|lambda| > 1`` blows up. A diagonal
recurrence ``h_t = a_t * h_{t-1} + b_t`` (the LRU, minGRU, a selective scan with
``a_t = exp(Delta_t A)``) has its eigenvalues on the diagonal, and a selective one
chooses them token by token: ``a_{t,j}`` *is* the eigenvalue of mode ``j`` at token
``t``. So the criterion becomes a distribution, read along the real input:

- the moduli ``|a_{t,j}|`` over tokens and modes;
- each mode's memory horizon, ``-1 / mean_t ln |a_{t,j}|`` steps (the number of
  steps over which it keeps ``e^-1`` of a signal; infinite when it does not decay);
- the share of modes that keep ``e^-2`` of a signal over the whole sequence,
  ``sum_t ln |a_{t,j}| >= -2``;
- the tokens that close the memory (the smallest mean ``ln |a_t|`` over the modes:
  a reset) and those that open it (the largest: a hold).

The figure is ``log10 |a_t|``, modes by tokens, for the first sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError, calling_user_code
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import t

__all__ = [
    "KEPT_FRACTION",
    "SelectiveSpectrum",
    "selective_details",
    "selective_spectra",
    "selective_spectrum",
    "selective_summary",
]

#: A mode keeps a signal over the sequence when at least ``e^-2`` of it is left.
KEPT_FRACTION = math.exp(-2.0)
#: How many tokens are named as opening and as closing the memory.
NAMED_TOKENS = 5


@dataclass(frozen=True, repr=False)
class SelectiveSpectrum(Displayable):
    """The selective eigenvalue criterion of one diagonal recurrence along its input.

    Attributes:
        module_name: the recurrence's name in the model.
        log_abs: ``(T, B, N)`` ``ln |a_{t,j}|`` for every token, sequence and mode.
        quantiles: ``|a|`` at the 0, 5, 50, 95 and 100th percentiles over tokens,
            sequences and modes.
        horizon: ``(N,)`` each mode's memory horizon in steps,
            ``-1 / mean ln |a_{t,j}|`` (``inf`` where the mean is not negative).
        kept_share: the share of (mode, sequence) pairs that keep ``e^-2`` of a signal
            over all ``T`` tokens.
        closing, opening: the tokens (``1..T``) whose mean ``ln |a_t|`` over the modes
            and sequences is the smallest (they reset the memory), and the largest;
            empty when the coefficients do not depend on the token (not selective).
    """

    module_name: str
    log_abs: FloatArray
    quantiles: FloatArray
    horizon: FloatArray
    kept_share: float
    closing: tuple[int, ...]
    opening: tuple[int, ...]

    @property
    def steps(self) -> int:
        return int(self.log_abs.shape[0])

    @property
    def modes(self) -> int:
        return int(self.log_abs.shape[2])

    @property
    def sentence(self) -> str:
        return selective_summary(self)

    def _summary(self) -> Summary:
        median = np.median(self.horizon)
        return Summary(
            f"selective eigenvalues of {self.module_name or 'the recurrence'}, T = {self.steps}",
            None,
            self.sentence,
            (
                ("modes", str(self.modes)),
                ("median |a|", number(float(self.quantiles[2]))),
                ("median horizon (steps)", number(float(median))),
                ("modes keeping e^-2 over T", f"{self.kept_share:.1%}"),
                ("tokens that close the memory", ", ".join(map(str, self.closing))),
            ),
        )

    def _columns(self) -> dict[str, Any]:
        means = self.log_abs.mean(axis=(0, 1))
        kept = (self.log_abs.sum(axis=0) >= -2.0).mean(axis=0)
        return {
            "mode": np.arange(1, self.modes + 1),
            "mean_log_abs_a": means,
            "horizon": self.horizon,
            "kept_share": kept,
        }

    def _figure(self, which: str | None = None) -> Figure:
        return selective_figure(self)


def selective_summary(result: SelectiveSpectrum) -> str:
    """The criterion in sentences, in the page's language."""
    return t(
        "The textbook's |lambda| < 1, made selective: the eigenvalues of this diagonal "
        "recurrence are its coefficients a_t, chosen token by token."
    ) + " " + selective_details(result)  # fmt: skip


def selective_details(result: SelectiveSpectrum) -> str:
    """The numbers of the criterion, in one sentence."""
    finite = result.horizon[np.isfinite(result.horizon)]
    median = float(np.median(result.horizon)) if result.horizon.size else math.nan
    lasting = t("without end") if math.isinf(median) else t("{steps} steps", steps=f"{median:.3g}")
    tokens = (
        t("tokens {closing} close the memory most.", closing=", ".join(map(str, result.closing)))
        if result.closing
        else t("the coefficients are the same at every token: a fixed lambda, not selective.")
    )
    return t(
        "Over T = {steps} tokens the median |a| is {median_a}, the median mode's memory "
        "lasts {horizon} (-1/ln|a|), {kept} of the modes keep e^-2 of a signal over the "
        "whole sequence, and {tokens}",
        steps=result.steps,
        median_a=f"{result.quantiles[2]:.4g}",
        horizon=lasting,
        kept=f"{result.kept_share:.1%}",
        tokens=tokens,
    ) + ("" if finite.size == result.horizon.size else " " + t(
        "{count} modes do not decay at all on this input.",
        count=result.horizon.size - finite.size,
    ))  # fmt: skip


def selective_figure(result: SelectiveSpectrum) -> Figure:
    """``log10 |a_t|``, modes by tokens, for the first sequence."""
    first = result.log_abs[:, 0, :].T / math.log(10.0)  # (N, T)
    figure = Figure(
        "selective_eigenvalues",
        t("log10 |a_t|: the eigenvalue of each mode at each token (first sequence)"),
        t("token t"),
        t("mode j"),
        integer_x=True,
    )
    figure.traces.append(
        Trace("log10 |a_t|", list(range(1, result.steps + 1)), list(range(1, result.modes + 1)),
              kind="heatmap", z=[list(row) for row in first], z_label="log10 |a_t|")
    )  # fmt: skip
    return figure


def _statistics(log_abs: FloatArray, name: str) -> SelectiveSpectrum:
    with np.errstate(divide="ignore", invalid="ignore"):
        moduli = np.exp(log_abs)
        quantiles = np.quantile(moduli, [0.0, 0.05, 0.5, 0.95, 1.0])
        means = log_abs.mean(axis=(0, 1))
        horizon = np.where(means < 0, -1.0 / means, np.inf)
        kept = float((log_abs.sum(axis=0) >= math.log(KEPT_FRACTION)).mean())
        per_token = log_abs.mean(axis=(1, 2))
    order = np.argsort(per_token, kind="stable")
    # A recurrence whose coefficients do not depend on the token (the LRU's fixed lambda)
    # has no token that opens or closes its memory.
    selective = bool(np.ptp(log_abs, axis=0).max() > 1e-12) if log_abs.size else False
    count = min(NAMED_TOKENS, per_token.size) if selective else 0
    return SelectiveSpectrum(
        module_name=name,
        log_abs=log_abs,
        quantiles=quantiles,
        horizon=horizon,
        kept_share=kept,
        closing=tuple(int(i) + 1 for i in order[:count]),
        opening=tuple(int(i) + 1 for i in order[::-1][:count]),
    )


def selective_spectrum(
    model: nn.Module, inputs: Any, *, module: str | None = None
) -> SelectiveSpectrum:
    """The selective eigenvalue criterion of the diagonal recurrence inside ``model``,
    along the trajectory that ``inputs`` drive (one forward pass, no gradient).

    Args:
        model: a diagonal recurrence of :mod:`rnngrad.modern`, a selective scan (mambapy's
            Mamba block, a layer of the protocol of :mod:`rnngrad.modern.selective`), a
            model with xLSTM's mLSTM cells (the forget gate ``sigma(f~_t)`` of each head,
            its matrix memory's coefficient ``dC_t/dC_{t-1} = f_t I``), or a
            model that calls one (found as :func:`rnngrad.gradient_profile` finds it; in a
            model of several selective blocks, the first unless ``module`` names one).
        inputs: the model's input (a tensor, or a tuple of its arguments).
        module: the recurrence's name, when the model has several.

    Raises:
        InvalidInputError: the recurrence is not diagonal, or the model never calls it.
    """
    return selective_spectra(model, inputs, module=module)[0]


def selective_spectra(
    model: nn.Module, inputs: Any, *, module: str | None = None
) -> list[SelectiveSpectrum]:
    """:func:`selective_spectrum` of every selective block of ``model`` (a Mamba stack:
    one per layer), or of its one diagonal recurrence, in registration order."""
    from rnngrad.modern.selective import is_selective_scan, selective_blocks

    arguments = inputs if isinstance(inputs, tuple) else (inputs,)
    named = dict(model.named_modules()).get(module) if module is not None else None
    if named is not None and is_selective_scan(named):
        blocks = [(str(module), named)]
    else:
        blocks = [] if module is not None else selective_blocks(model)
    if blocks:
        return [
            _statistics(logs, name) for name, logs in _scan_coefficients(model, arguments, blocks)
        ]
    from rnngrad.profile.mlstm import mlstm_cells

    cells = mlstm_cells(model) if module is None else []
    if cells:
        return [_statistics(logs, name) for name, logs in _forget_gates(model, arguments, cells)]
    return [_diagonal_layer(model, arguments, module)]


def _forget_gates(
    model: nn.Module, arguments: tuple[Any, ...], cells: list[tuple[str, nn.Module]]
) -> list[tuple[str, FloatArray]]:
    """``ln f_t = ln sigma(f~_t)`` ``(T, B, heads)`` of every mLSTM cell in one forward:
    its memory ``C_t = f_t C_{t-1} + i_t v_t k_t^T`` (before the stabiliser's rescaling,
    a gauge) has ``dC_t/dC_{t-1} = f_t I`` per head, one coefficient per head and token."""
    from rnngrad.profile.model_call import forked_rng

    recorded: dict[str, torch.Tensor] = {}
    hooks = [
        cell.get_submodule("fgate").register_forward_hook(
            lambda _m, _a, out, name=name: recorded.setdefault(name, out.detach())
        )
        for name, cell in cells
    ]
    try:
        with torch.no_grad(), forked_rng(arguments), calling_user_code(type(model).__name__):
            model(*arguments)
    finally:
        for hook in hooks:
            hook.remove()
    missing = [name for name, _ in cells if name not in recorded]
    if missing:
        raise InvalidInputError(f"the model never ran the mLSTM cell {missing[0]!r}")
    return [
        (name, torch.nn.functional.logsigmoid(recorded[name].double()).transpose(0, 1).numpy())
        for name, _ in cells
    ]


def _scan_coefficients(
    model: nn.Module, arguments: tuple[Any, ...], blocks: list[tuple[str, nn.Module]]
) -> list[tuple[str, FloatArray]]:
    """``ln |a_t|`` ``(T, B, state flattened)`` of every block's scan in one forward."""
    from rnngrad.modern.scan import linear_scan
    from rnngrad.modern.selective import all_scans_through
    from rnngrad.profile.model_call import forked_rng

    recorded: dict[str, torch.Tensor] = {}

    def scan_of(name: str) -> Any:
        def scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            recorded.setdefault(name, a.detach())
            return linear_scan(a.transpose(0, 1), b.transpose(0, 1)).transpose(0, 1)

        return scan

    with torch.no_grad(), forked_rng(arguments), all_scans_through(blocks, scan_of):
        with calling_user_code(type(model).__name__):
            model(*arguments)
    missing = [name for name, _ in blocks if name not in recorded]
    if missing:
        raise InvalidInputError(f"the model never ran the selective scan {missing[0]!r}")
    result = []
    for name, _ in blocks:
        a = recorded[name]
        logs = torch.log(a.abs().double()).transpose(0, 1).reshape(a.shape[1], a.shape[0], -1)
        result.append((name or type(model).__name__, logs.cpu().numpy()))
    return result


def _diagonal_layer(
    model: nn.Module, arguments: tuple[Any, ...], module: str | None
) -> SelectiveSpectrum:
    """The criterion of a diagonal recurrence of :mod:`rnngrad.modern` in ``model``."""
    from rnngrad.cells import find_recurrent_module
    from rnngrad.modern.base import DiagonalRecurrence
    from rnngrad.profile.model_call import forked_rng, recorded_calls, recurrent_base

    name, layer = find_recurrent_module(model, module)
    if not isinstance(layer, DiagonalRecurrence):
        raise InvalidInputError(
            f"{name or type(layer).__name__} is not a diagonal recurrence: its eigenvalues "
            "are those of W_hh (rnngrad.recurrent_spectrum), not one per token"
        )
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    original = recurrent_base(type(layer)).forward

    def forward(x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        start = layer.initial_state(x.shape[1], x) if h0 is None else h0
        states: torch.Tensor = original(layer, x, start)
        seen.append((x.detach(), start.detach(), states.detach()))
        return states

    with torch.no_grad(), forked_rng(arguments):
        with recorded_calls(layer, forward), calling_user_code(type(model).__name__):
            model(*arguments)
    if not seen:
        raise InvalidInputError(f"the model never called its recurrent module {name!r}")
    x, h0, states = seen[0]
    with torch.no_grad():
        coefficients = layer.state_jacobian(x, states, h0)
        logs = torch.log(coefficients.abs().double()).expand(*states.shape[:2], layer.state_size)
    return _statistics(logs.cpu().numpy(), name or type(layer).__name__)
