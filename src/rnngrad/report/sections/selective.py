"""A selective model's page: its eigenvalues token by token (the textbook's criterion made
selective), and its exact Lyapunov exponents, both from one forward pass on its input."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnngrad.jsonout import lyapunov_json
from rnngrad.logspace import finite_or_none
from rnngrad.lyapunov.diagonal import exponents_from_log_moduli
from rnngrad.lyapunov.result import lyapunov_trace
from rnngrad.report.models import ReportModel
from rnngrad.report.section import Section
from rnngrad.selective.criterion import (
    SelectiveSpectrum,
    selective_details,
    selective_figure,
    selective_spectra,
)
from rnngrad.show.figure import Figure
from rnngrad.show.i18n import shown, t

__all__ = ["criterion_section", "memory_section", "selective_sections"]


def selective_sections(model: ReportModel) -> tuple[Section, Section]:
    """The spectrum and the Lyapunov sections of a model of selective scans."""
    spectra = selective_spectra(model.module, model.inputs, module=model.recurrent)
    return criterion_section(spectra), _lyapunov_section(spectra)


def criterion_section(spectra: list[SelectiveSpectrum]) -> Section:
    """The spectrum section of a diagonal or selective recurrence: its criterion, token by
    token, one heat map per layer."""
    figures, numbers, stories = [], {}, []
    for index, spectrum in enumerate(spectra):
        figure = selective_figure(spectrum)
        figure.id = f"selective_eigenvalues_{index}"
        figure.title = f"{shown(spectrum.module_name)}: {figure.title}"
        figures.append(figure)
        numbers[spectrum.module_name] = {
            "quantiles_abs_a": [finite_or_none(v) for v in spectrum.quantiles],
            "median_horizon": finite_or_none(float(np.median(spectrum.horizon))),
            "kept_share": spectrum.kept_share,
            "closing_tokens": list(spectrum.closing),
            "opening_tokens": list(spectrum.opening),
        }
        stories.append(f"{shown(spectrum.module_name)}: {selective_details(spectrum)}")
    sentence = t(
        "The textbook's |lambda| < 1, made selective: the eigenvalues of this diagonal "
        "recurrence are its coefficients a_t, chosen token by token."
    ) + " " + " ".join(stories)  # fmt: skip
    return Section("spectrum", t("The eigenvalues, token by token"), sentence, None, figures,
                   numbers)  # fmt: skip


def _lyapunov_section(spectra: list[SelectiveSpectrum]) -> Section:
    figure = Figure("lyapunov_spectrum", t("Lyapunov spectrum"), "i",
                    t("lambda_i (nats per step)"), integer_x=True)  # fmt: skip
    numbers: dict[str, Any] = {}
    stories = []
    for spectrum in spectra:
        result = exponents_from_log_moduli(spectrum.log_abs, module_name=spectrum.module_name)
        figure.traces.append(lyapunov_trace(result, spectrum.module_name))
        entry = lyapunov_json(result, spectrum.module_name, None)
        numbers[spectrum.module_name] = {
            "exponents": entry["exponents"], "lambda1": entry["exponents"][0],
            "method": result.method,
        }  # fmt: skip
        stories.append(
            t("{name}: lambda_1 = {value} nats per step", name=shown(spectrum.module_name),
              value=f"{result.exponents[0]:.3g}")
        )  # fmt: skip
    sentence = t(
        "{stories}. A selective scan's state Jacobian is diagonal, so each exponent is the "
        "time average of one mode's ln|a_t| along the model's own input: exact, no QR.",
        stories="; ".join(stories),
    )
    lambda1 = max(v["lambda1"] for v in numbers.values() if v["lambda1"] is not None)
    verdict = "chaotic" if lambda1 > 0 else "contracting"
    return Section("lyapunov", t("The Lyapunov spectrum"), sentence, verdict, [figure], numbers)


def memory_section(model: ReportModel) -> Section:
    """The curse of memory: ``||dh_t/dtheta||`` of the recurrence's own parameters beside
    ``||h_t||``, and ``||dL/dtheta||`` (:func:`rnngrad.memory_sensitivity`)."""
    from rnngrad.profile.sensitivity import memory_sensitivity

    result = memory_sensitivity(model.module, model.inputs, loss=model.loss,
                                module=model.recurrent, directions=8)  # fmt: skip
    figure = result._figure()
    figure.title = t("sensitivity of the states to the recurrence's own parameters")
    from rnngrad.jsonout import sensitivity_json

    numbers = sensitivity_json(result)
    stories = []
    for entry in result.parameters:
        last = float(entry.mean_state_norm[-1])
        if entry.exact:
            stories.append(t("{name}: {value}", name=entry.name, value=f"{last:.3g}"))
    sentence = t(
        "The gradient carried through the states can be tame while the states' "
        "sensitivity to the recurrence's own parameters explodes as its memory lengthens "
        "(the curse of memory, Zucchet & Orvieto 2024). At the last token, against "
        "||h_T|| = {state}, ||dh_T/dtheta|| per mode is {stories}.",
        state=f"{float(result.state_norm[:, -1].mean()):.3g}",
        stories="; ".join(stories) or t("not measured (no per-mode parameter)"),
    )
    return Section("memory", t("The curse of memory"), sentence, None, [figure], numbers)
