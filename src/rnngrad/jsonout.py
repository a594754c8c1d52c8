"""The JSON form of rnngrad's results (the ``--json`` contract of the CLI).

Rules: a value that does not fit a float64 is ``null`` and its ``log10_...``
field carries it; a ``log10_...`` field is ``null`` only when its value is
exactly zero; NaN and Infinity never appear (``json.dumps`` runs with
``allow_nan=False``, so a slip raises instead of printing a non-number).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from rnngrad.logspace import finite_or_none
from rnngrad.theory.scalar import ScalarChainRule
from rnngrad.theory.spectrum import RecurrentSpectrum
from rnngrad.verdict import GrowthVerdict, SpectrumVerdict

if TYPE_CHECKING:  # these need torch; the numpy-only commands should not load it
    from rnngrad.lyapunov.result import LyapunovSpectrum
    from rnngrad.profile.front import GradientProfile
    from rnngrad.profile.result import LayerProfile
    from rnngrad.profile.sensitivity import MemorySensitivity

__all__ = [
    "dumps",
    "growth_verdict_json",
    "layer_json",
    "lyapunov_json",
    "profile_json",
    "scalar_json",
    "sensitivity_json",
    "spectrum_json",
]


def _list(values: ArrayLike) -> list[float | None]:
    return [finite_or_none(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def growth_verdict_json(verdict: GrowthVerdict) -> dict[str, Any]:
    """The growth rule's verdict as a JSON object."""
    return {
        "label": verdict.label,
        "sentence": verdict.sentence,
        "rule": verdict.rule,
        "tolerance": verdict.tolerance,
        "steps": verdict.steps,
        "log10_change": finite_or_none(verdict.log10_change),
        "log10_rate_per_step": finite_or_none(verdict.log10_rate),
        "factor_per_step": finite_or_none(verdict.factor_per_step),
    }


def spectrum_verdict_json(verdict: SpectrumVerdict) -> dict[str, Any]:
    """The spectrum rule's verdict as a JSON object."""
    return {
        "label": verdict.label,
        "sentence": verdict.sentence,
        "eigenvalue_criterion": verdict.eigenvalue_label,
        "singular_value_criterion": verdict.singular_value_label,
        "norm2_times_gamma": finite_or_none(verdict.norm2_times_gamma),
        "transient_flag": verdict.transient_flag,
        "disagreement": verdict.disagreement or None,
        "rule": verdict.rule,
    }


def scalar_json(result: ScalarChainRule) -> dict[str, Any]:
    """The ``rnngrad scalar --json`` object."""
    return {
        "activation": result.activation,
        "gamma": result.gamma,
        "parameters": {
            "a": result.a,
            "b": result.b,
            "c": result.c,
            "d": result.d,
            "e": result.e,
            "h0": result.h0,
        },
        "steps": result.steps,
        "x": _list(result.x),
        "h": _list(result.h),
        "y": finite_or_none(result.y),
        "overflow_step": result.overflow_step,
        "factors": _list(result.factors),
        "log10_abs_factors": _list(result.log10_abs_factors),
        "dy_dh": _list(result.dy_dh),
        "log10_abs_dy_dh": _list(result.log10_abs_dy_dh),
        "bound": _list(result.bound),
        "log10_bound": _list(result.log10_bound),
        "verdict": growth_verdict_json(result.verdict),
    }


def spectrum_json(result: RecurrentSpectrum, source: str) -> dict[str, Any]:
    """The ``rnngrad spectrum --json`` object."""
    transient = result.transient
    return {
        "source": source,
        "hidden": result.size,
        "activation": result.activation,
        "gamma": result.gamma,
        "delta": result.delta,
        "eigenvalues": [
            [finite_or_none(v.real), finite_or_none(v.imag)] for v in result.eigenvalues
        ],
        "spectral_radius": finite_or_none(result.spectral_radius),
        "singular_values": _list(result.singular_values),
        "norm2": finite_or_none(result.norm2),
        "diagonalizable": result.diagonalizable,
        "eigvec_condition": finite_or_none(result.eigvec_condition),
        "max_transient_growth": finite_or_none(transient.max_growth),
        "log10_max_transient_growth": finite_or_none(transient.log10_max_growth),
        "transient_peak_step": transient.peak_step,
        "transient_certified": transient.certified,
        "transient_max_steps": transient.max_steps,
        "log10_power_norms": _list(transient.log10_norms),
        "verdict": spectrum_verdict_json(result.verdict),
    }


def layer_json(lp: LayerProfile) -> dict[str, Any]:
    """One layer and direction of the ``rnngrad profile --json`` object (the report's
    profile section takes its numbers from here too)."""
    entry: dict[str, Any] = {
        "layer": lp.layer,
        "direction": lp.direction,
        "grad_norm": _list(lp.mean_grad_norm),
        "log10_grad_norm": _list(lp.log10_grad_norm),
        "log10_ratio": None if lp.log10_ratio is None else finite_or_none(lp.log10_ratio),
        "decay_rate": None if lp.decay_rate is None else finite_or_none(lp.decay_rate),
        "horizon": lp.horizon,
        "saturation": finite_or_none(lp.saturation),
        "first_nonfinite_step": lp.first_nonfinite_step,
        "summary_order": "t = 1..T" if lp.direction else "t = T..1",
        "verdict": growth_verdict_json(lp.verdict),
        "carried_grad_norm": _list(lp.mean_carried_norm),
        "carried_h_norm": _list(lp.mean_carried_h_norm),
        "carried_from": [int(t) for t in lp.carried_from],
        "carried_by": lp.carried_by,
    }
    if lp.mean_cell_grad_norm is not None:
        entry["cell_grad_norm"] = _list(lp.mean_cell_grad_norm)
    if lp.mean_carried_c_norm is not None:
        entry["carried_c_norm"] = _list(lp.mean_carried_c_norm)
    return entry


def profile_json(result: GradientProfile, model: str) -> dict[str, Any]:
    """The ``rnngrad profile --json`` object."""
    layers = [layer_json(lp) for lp in result.layers]
    return {
        "model": model,
        "module": result.layout.kind,
        "module_name": result.module_name,
        "steps": result.steps,
        "batch": result.batch,
        "loss": result.loss,
        "loss_value": finite_or_none(result.loss_value),
        "dtype": result.dtype,
        "source_dtype": result.source_dtype,
        "precision_note": result.precision_note,
        "calls": result.calls,
        "lengths": [int(n) for n in result.lengths],
        "sequences_per_step": [int(n) for n in result.sequences_per_step],
        "units": {"decay_rate": "nats per step, positive when the gradient shrinks backwards"},
        "orders": {
            "grad_norm, log10_grad_norm, cell_grad_norm, first_nonfinite_step": (
                "input position t = 1..T (entry t-1), both directions; each entry the mean "
                "over the sequences that have step t (sequences_per_step); the total "
                "gradient dL/dh_t, which says where the loss enters"
            ),
            "carried_grad_norm, carried_h_norm, carried_c_norm": (
                "input position t = 1..T; the gradient carried back from each sequence's "
                "last loss-bearing step (carried_from, an input position) alone through the "
                "recurrence, over the whole state (h, and c for LSTM) and at h and c apart; "
                "null at the steps no sequence's carried gradient covers"
            ),
            "log10_ratio, decay_rate, horizon, verdict": (
                "read from carried_grad_norm in the direction's own backpropagation order "
                "(summary_order): the forward direction from its last loss-bearing step "
                "back to t = 1, the reverse direction back to t = T; log10_ratio = "
                "log10 |g~ at the first processed step| / |g~ at the last loss-bearing "
                "step|, horizon counts back from that step"
            ),
        },
        "layers": layers,
    }


def sensitivity_json(result: MemorySensitivity) -> dict[str, Any]:
    """The curse of memory (``rnngrad profile --sensitivity --json``'s
    ``memory_sensitivity``, the report's memory section): per parameter of the recurrence,
    ``||dh_t/dtheta||`` (mean over the sequences, per token) and ``||dL/dtheta||``."""
    return {
        "module_name": result.module_name,
        "orders": {"state_norm, state_sensitivity, ci95": "token t = 1..T (entry t-1)"},
        "state_norm": _list(result.state_norm.mean(axis=0)),
        "parameters": [
            {
                "name": entry.name,
                "size": entry.size,
                "exact": entry.exact,
                "directions": entry.directions,
                "state_sensitivity": _list(entry.mean_state_norm),
                "state_sensitivity_last": finite_or_none(float(entry.mean_state_norm[-1])),
                "ci95": _list(entry.ci95.mean(axis=0)),
                "grad_norm": finite_or_none(entry.grad_norm),
            }
            for entry in result.parameters
        ],
    }


def lyapunov_json(
    result: LyapunovSpectrum, source: str, mean_field_lambda1: float | None
) -> dict[str, Any]:
    """The ``rnngrad lyapunov --json`` object."""
    return {
        "source": source,
        "method": result.method,
        "exponents": _list(result.exponents),
        "ci95": _list(result.ci95),
        "reliable": [bool(v) for v in result.reliable],
        "sum": finite_or_none(result.total),
        "kaplan_yorke_dim": result.kaplan_yorke_dim,
        "summaries": None if result.summaries is None else result.summaries.as_dict(),
        "lambda1_two_trajectories": finite_or_none(result.lambda1_two_trajectories),
        "mean_field_lambda1": mean_field_lambda1,
        "steps": result.steps,
        "warmup": result.warmup,
        "reorth": result.reorth,
        "qr": result.qr,
        "factorisations": result.factorisations,
        "ci95_trajectories": (
            None if result.ci95_trajectories is None else _list(result.ci95_trajectories)
        ),
        "ci95_windows": None if result.ci95_windows is None else _list(result.ci95_windows),
        "batch": result.batch,
        "k": int(result.exponents.size),
        "state_size": result.state_size,
        "units": result.units,
        "module_name": result.module_name,
        "layer": result.layer,
        "direction": result.direction,
        "dtype": result.dtype,
        "converted_from": result.converted_from,
        "exact_zero": None if result.exact_zero is None else [bool(v) for v in result.exact_zero],
        "conversions": {"log10_per_step": "divide by ln 10", "bits_per_step": "divide by ln 2"},
        "running": {
            "steps": [int(s) for s in result.running_steps],
            "lambda1": _list(result.running[:, 0]),
        },
    }


def dumps(payload: dict[str, Any]) -> str:
    """Serialise strictly: a NaN or infinity that slipped through raises ValueError."""
    return json.dumps(payload, allow_nan=False)
