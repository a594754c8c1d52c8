"""The recurrent matrix: the spectra of the built-in ``W_hh`` examples, or the state
Jacobian of the reader's own model along its trajectory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.jsonout import spectrum_json
from rnngrad.logspace import finite_or_none
from rnngrad.rate.network import RateRNN
from rnngrad.report.models import (
    ReportModel,
    float64_copy,
    recurrent_module_of,
    state_size,
)
from rnngrad.report.section import Section
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import shown, t, verdict_word
from rnngrad.theory.spectrum import recurrent_spectrum, spectrum_figures

__all__ = ["SPECTRUM_FIELDS", "model_spectrum_section", "spectrum_section"]

#: The fields of ``rnngrad spectrum --json`` that the page keeps.
SPECTRUM_FIELDS = (
    "spectral_radius",
    "norm2",
    "eigvec_condition",
    "max_transient_growth",
    "transient_peak_step",
)


def _trajectory_systems(module: nn.Module) -> list[tuple[str, dict[str, int]]]:
    """The recurrences whose state Jacobians the spectrum section follows: each layer
    and direction of a bidirectional module, else the whole (stacked) state."""
    from rnngrad.cells import describe_module

    if isinstance(module, RateRNN):
        return [("the recurrence", {})]
    layout = describe_module(module)
    if layout.bidirectional:
        return [(f"layer {layer}{suffix}", {"layer": layer, "direction": direction})
                for layer in range(layout.num_layers)
                for direction, suffix in ((0, ""), (1, " reverse"))]  # fmt: skip
    return [("all layers" if layout.num_layers > 1 else "the recurrence", {})]


def model_spectrum_section(
    model: ReportModel,
    matrices: dict[str, np.ndarray],
    quick: bool,
    seed: int,
    device: torch.device,
) -> Section:
    """The spectrum section for the reader's model: the singular values of the product of
    its real state Jacobians ``dh_T/dh_k`` along a trajectory as the headline, and the
    fixed blocks of ``W_hh`` (one per gate) behind a selector."""
    from rnngrad.lyapunov.finite_time import finite_time_spectrum
    from rnngrad.modern.base import DiagonalRecurrence
    from rnngrad.verdict import growth_verdict

    module = recurrent_module_of(model.module, model.recurrent)
    blocks = spectrum_section(matrices, at_rest=isinstance(module, RateRNN))
    if isinstance(module, DiagonalRecurrence):
        # Its coefficients are its eigenvalues token by token (and the LRU's fixed lambda
        # is the recurrence exactly: its blocks follow).
        from rnngrad.report.sections.selective import criterion_section
        from rnngrad.selective.criterion import selective_spectra

        section = criterion_section(selective_spectra(model.module, model.inputs,
                                                      module=model.recurrent))  # fmt: skip
        if matrices:
            section.figures += blocks.figures
            section.numbers.update(blocks.numbers)
            section.sentence += " " + blocks.sentence
        return section
    steps = 60 if quick else 150
    rate = isinstance(module, RateRNN)
    figure = Figure(
        "jacobian_singular_values",
        t("largest singular value of dx_T/dx_k, the product of the real Jacobians")
        if rate
        else t("largest singular value of dh_T/dh_k, the product of the real Jacobians"),
        t("T - k (steps back)"), "sigma_1(dx_T/dx_k)" if rate else "sigma_1(dh_T/dh_k)",
        log_y=True, integer_x=True,
    )  # fmt: skip
    numbers: dict[str, Any] = {}
    stories, labels = [], set()
    for label, where in _trajectory_systems(module):
        copy = float64_copy(module).to(device)
        result = finite_time_spectrum(
            copy, steps=steps, warmup=50, k=min(4, state_size(copy, bool(where))), seed=seed,
            inputs="random", **where,  # type: ignore[arg-type]
        )  # fmt: skip
        assert result.log_singular_values is not None
        logs = result.log_singular_values[::-1]  # row j: j steps back
        log10_top = logs[:, 0] / np.log(10.0)
        back = list(range(steps))
        figure.traces.append(Trace(label, back, [10.0**v for v in log10_top]))
        verdict = growth_verdict(float(log10_top[-1]), steps - 1)
        labels.add(verdict.label)
        numbers[label] = {
            "log10_sigma": [[finite_or_none(v / np.log(10.0)) for v in row] for row in logs],
            "log10_sigma1_full_span": finite_or_none(float(log10_top[-1])),
            "verdict": verdict.label,
        }
        values = {"name": shown(label), "steps": steps - 1,
                  "value": _power_of_ten(float(log10_top[-1])),
                  "verdict": verdict_word(verdict.label)}  # fmt: skip
        stories.append(
            t("{name}: sigma_1 of dx_T/dx_1 over {steps} steps is {value}, {verdict}", **values)
            if rate
            else t("{name}: sigma_1 of dh_T/dh_1 over {steps} steps is {value}, {verdict}",
                   **values)
        )  # fmt: skip
    for name, entry in blocks.numbers.items():
        numbers[f"W_hh block {name}"] = entry
    for block_figure in blocks.figures:
        block_figure.selectable = True
    verdict_label = labels.pop() if len(labels) == 1 else "mixed"
    if rate:
        sentence = t(
            "Along the network's own trajectory (driven by N(0, 1) inputs), the gradient at "
            "the currents is multiplied by the product of the step Jacobians dx_T/dx_k, each "
            "(1 - delta) I + delta W diag(phi'(x_t)), and its largest singular value says how "
            "far it can grow or shrink: {stories}. The matrix (1 - delta) I + delta W below is "
            "the step Jacobian of the network at rest (every phi' = 1): its eigenvalues are "
            "1 - delta + delta lambda_i(W), with delta = {delta}.", stories="; ".join(stories),
            delta=f"{module.delta:g}",
        )  # fmt: skip
        title = t("The state Jacobian and the network at rest")
        return Section("spectrum", title, sentence, verdict_label, [figure, *blocks.figures],
                       numbers, selector=t("matrix:"))  # fmt: skip
    sentence = t(
        "Along the model's own trajectory (driven by N(0, 1) inputs), the gradient is "
        "multiplied by the product of the state Jacobians dh_T/dh_k, and its largest singular "
        "value says how far it can grow or shrink: {stories}. The blocks of W_hh below (one "
        "per gate for an LSTM or GRU) are not the recurrence by themselves, since the gates' "
        "derivatives mix them into each step's Jacobian; choose one to see its eigenvalues, "
        "singular values and powers.", stories="; ".join(stories),
    )  # fmt: skip
    return Section(
        "spectrum",
        t("The state Jacobian and the blocks of W_hh"),
        sentence,
        verdict_label,
        [figure, *blocks.figures],
        numbers,
    )


def _power_of_ten(log10_value: float) -> str:
    if not np.isfinite(log10_value):
        return t("exactly 0") if log10_value < 0 else t("not finite")
    return f"10^{log10_value:.1f}"


def spectrum_section(matrices: dict[str, np.ndarray], *, at_rest: bool = False) -> Section:
    """The eigenvalues, singular values and powers of each matrix; ``at_rest``: the
    matrix is a rate network's step Jacobian at rest, ``M = (1 - delta) I + delta W``,
    and the figures say so."""
    if not matrices:
        return Section(
            "spectrum",
            t("The recurrent matrix W_hh"),
            t(
                "This recurrence has no fixed recurrent matrix: its coefficient dh_t/dh_(t-1) "
                "depends on the input at every step (minGRU, minLSTM); the gradient profile and "
                "the Lyapunov spectrum below measure it along the real trajectory."
            ),
            None,
        )
    results = {name: recurrent_spectrum(matrix) for name, matrix in matrices.items()}
    eigen, singular, growth = spectrum_figures(results, matrices)
    if at_rest:
        eigen.title = t("eigenvalues of (1 - delta) I + delta W and the unit circle")
        singular.title = t("singular values of (1 - delta) I + delta W")
        growth.title = t("transient growth ||M^k||_2, M = (1 - delta) I + delta W")
        growth.y_label = "||M^k||_2"
    numbers: dict[str, Any] = {}
    stories = []
    for name, result in results.items():
        label = shown(name)
        entry = spectrum_json(result, name)
        numbers[name] = {key: entry[key] for key in SPECTRUM_FIELDS}
        numbers[name]["verdict"] = result.verdict.label
        numbers[name]["sentence"] = result.verdict.sentence
        story = t(
            "{name}: rho = {rho}, {verdict}",
            name=label,
            rho=f"{result.spectral_radius:.3g}",
            verdict=verdict_word(result.verdict.label),
        )
        if result.verdict.transient_flag:
            story += t(
                ", yet ||W^k|| reaches {peak} at k = {step} before it decays, which the "
                "eigenvalues miss", peak=f"{result.transient.max_growth:.3g}",
                step=result.transient.peak_step,
            )  # fmt: skip
        stories.append(story)
    labels = {v["verdict"] for v in numbers.values()}
    verdict = labels.pop() if len(labels) == 1 else "mixed"
    sentence = "; ".join(stories) + "."
    return Section(
        "spectrum",
        t("The recurrent matrix W_hh"),
        sentence,
        verdict,
        [eigen, singular, growth],
        numbers,
    )
