"""The gradient profile of every layer and direction of the page's models."""

from __future__ import annotations

from functools import partial
from typing import Any

from rnngrad.jsonout import layer_json
from rnngrad.profile.front import gradient_profile
from rnngrad.profile.result import LayerProfile, profile_traces
from rnngrad.report.models import (
    ReportModel,
)
from rnngrad.report.section import Section, legend_label
from rnngrad.show.figure import Figure
from rnngrad.show.i18n import shown, t, verdict_word

__all__ = ["PROFILE_FIELDS", "profile_section"]

#: The fields of ``rnngrad profile --json``'s layers that the page keeps.
PROFILE_FIELDS = ("grad_norm", "log10_ratio", "decay_rate", "horizon", "saturation")


def _layer_label(layer: LayerProfile, *, model: ReportModel, models: list[ReportModel]) -> str:
    return legend_label(model, layer.name, models)


def profile_section(models: list[ReportModel]) -> tuple[Section, dict[str, float]]:
    figure = Figure(
        "gradient_profile",
        t("per-time-step gradient ||dL/dh_t||"),
        "t",
        "||dL/dh_t||",
        log_y=True,
    )
    numbers: dict[str, Any] = {}
    stories, saturation, labels = [], {}, set()
    for model in models:
        profile = gradient_profile(
            model.module, model.inputs, loss=model.loss, module=model.recurrent
        )
        figure.traces.extend(
            profile_traces(profile, partial(_layer_label, model=model, models=models))
        )
        for layer in profile.layers:
            name = legend_label(model, layer.name, models)
            label = shown(name)
            start = "t = 1" if layer.direction else "t = T"
            horizon = (
                t("beyond T")
                if layer.horizon is None
                else t("{steps} steps from {start}", steps=layer.horizon, start=start)
            )
            decay = (
                t("undefined")
                if layer.decay_rate is None
                else t("{rate} nats per step", rate=f"{layer.decay_rate:.3g}")
            )
            stories.append(
                t("{name}: {verdict}, decay {decay}, horizon {horizon}", name=label,
                  verdict=verdict_word(layer.verdict.label), decay=decay, horizon=horizon)
            )  # fmt: skip
            labels.add(layer.verdict.label)
            saturation[name] = layer.saturation
            entry = layer_json(layer)
            numbers[name] = {key: entry[key] for key in PROFILE_FIELDS}
            # The page's own words for the order, and the label alone for the verdict.
            numbers[name]["summary_order"] = layer.summary_order
            numbers[name]["verdict"] = layer.verdict.label
    verdict = labels.pop() if len(labels) == 1 else "mixed"
    sentence = "; ".join(stories) + "."
    section = Section("profile", t("The gradient profile"), sentence, verdict, [figure], numbers)
    return section, saturation
