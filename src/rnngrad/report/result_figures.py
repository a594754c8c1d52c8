"""The figure of each result, as data: one implementation for the page and ``.plot()``.

Each builder takes a core result and returns :class:`~rnngrad.report.figures.Figure`
data (or its traces, where the page overlays several models); the page turns them
into Plotly specs and static files, a result's ``.plot()`` into a Plotly
``Figure``. Words go through :func:`~rnngrad.report.i18n.t`, so a page in Korean
gets the same figures in Korean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from rnngrad.report.figures import Figure, Trace
from rnngrad.report.i18n import shown, t

if TYPE_CHECKING:
    from rnngrad.jacobians import JacobianProducts
    from rnngrad.lab.train import TrainResult
    from rnngrad.lyapunov_result import LyapunovSpectrum
    from rnngrad.profile_result import GradientProfile, LayerProfile
    from rnngrad.scalar import ScalarChainRule
    from rnngrad.spectrum import RecurrentSpectrum

__all__ = [
    "jacobian_figure",
    "lyapunov_figure",
    "lyapunov_trace",
    "profile_figure",
    "profile_traces",
    "scalar_figure",
    "spectrum_figures",
    "training_figure",
]


def scalar_figure(result: ScalarChainRule, title: str | None = None) -> Figure:
    """``|dy/dh_k|`` against its bound ``|d| (|a| gamma)^(T-k)``, log scale."""
    steps = list(range(1, result.steps + 1))
    return Figure(
        "scalar_chain_rule",
        title or t("dy/dh_k against its bound"),
        "k",
        "|dy/dh_k|",
        [
            Trace("|dy/dh_k|", steps, [10.0**v for v in result.log10_abs_dy_dh], "lines+markers"),
            Trace(
                t("bound |d|(|a|gamma)^(T-k)"),
                steps,
                [10.0**v for v in result.log10_bound],
                "lines+markers",
                dash=True,
            ),
        ],
        log_y=True,
    )


def spectrum_figures(results: dict[str, RecurrentSpectrum]) -> tuple[Figure, Figure, Figure]:
    """Eigenvalues beside the unit circle, singular values, and ``||W^k||_2`` (the first
    200 powers at most: powers of a matrix with ``rho > 1`` grow without end)."""
    eigen = Figure(
        "eigenvalues", t("eigenvalues of W_hh and the unit circle"), "Re", "Im", equal_axes=True
    )
    angle = np.linspace(0, 2 * np.pi, 181)
    eigen.traces.append(
        Trace(t("unit circle"), list(np.cos(angle)), list(np.sin(angle)), dash=True, fixed=True)
    )
    singular = Figure("singular_values", t("singular values of W_hh"), "i", "sigma_i", log_y=True)
    growth = Figure(
        "transient_growth", t("transient growth ||W^k||_2"), "k", "||W^k||_2", log_y=True
    )
    for name, result in results.items():
        label = shown(name)
        values = result.eigenvalues
        eigen.traces.append(Trace(label, list(values.real), list(values.imag), "markers"))
        index = list(range(1, result.size + 1))
        singular.traces.append(Trace(label, index, list(result.singular_values), "lines+markers"))
        norms = 10.0 ** result.transient.log10_norms[:200]
        growth.traces.append(Trace(label, list(range(1, norms.size + 1)), list(norms)))
    return eigen, singular, growth


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


def lyapunov_trace(result: LyapunovSpectrum, name: str) -> Trace:
    """The exponents ``lambda_1 >= lambda_2 >= ...`` against their index."""
    index = list(range(1, result.exponents.size + 1))
    return Trace(shown(name), index, list(result.exponents), "lines+markers")


def lyapunov_figure(result: LyapunovSpectrum) -> Figure:
    """The Lyapunov spectrum, with the 95% interval of each exponent as a band."""
    figure = Figure("lyapunov_spectrum", t("Lyapunov spectrum"), "i", t("lambda_i (nats per step)"))
    index = list(range(1, result.exponents.size + 1))
    if np.isfinite(result.ci95).any():
        figure.traces.append(Trace("", index, list(result.exponents - result.ci95), fill="edge"))
        figure.traces.append(Trace("", index, list(result.exponents + result.ci95), fill="band"))
    name = result.module_name or t("the recurrence")
    figure.traces.append(lyapunov_trace(result, name))
    return figure


def jacobian_figure(result: JacobianProducts) -> Figure:
    """``||dh_T/dh_k||_2`` and, where a loss gradient was given, ``||dL/dh_k||_2``."""
    steps = list(range(1, result.log10_norm.size + 1))
    figure = Figure("jacobian_products", t("exact Jacobian products"), "k", t("norm"), log_y=True)
    figure.traces.append(Trace("||dh_T/dh_k||_2", steps, list(10.0**result.log10_norm)))
    if result.log10_grad_norm is not None:
        figure.traces.append(
            Trace("||dL/dh_k||_2", steps, list(10.0**result.log10_grad_norm), dash=True)
        )
    return figure


def training_figure(result: TrainResult) -> Figure:
    """The held-out loss against the training step, beside the memoryless baseline."""
    evaluations = result.records.get("evaluations", [])
    steps = [row["step"] for row in evaluations]
    figure = Figure(
        "learning_curve", t("held-out loss during training"), t("training step"), t("loss"),
        log_y=True,
    )  # fmt: skip
    figure.traces.append(Trace(t("held-out loss"), steps, [row["loss"] for row in evaluations]))
    if steps:
        figure.traces.append(
            Trace(t("memoryless baseline"), [steps[0], steps[-1]], [result.baseline_loss] * 2,
                  dash=True)
        )  # fmt: skip
    return figure
