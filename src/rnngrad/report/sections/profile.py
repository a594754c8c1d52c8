"""The gradient profile of every layer and direction of the page's models."""

from __future__ import annotations

from functools import partial
from typing import Any

from rnngrad.jsonout import layer_json
from rnngrad.logspace import finite_or_none
from rnngrad.profile.front import gradient_profile
from rnngrad.profile.result import LayerProfile, profile_traces
from rnngrad.report.models import ReportModel, rate_network_of
from rnngrad.report.section import Section, legend_label
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import shown, t, verdict_word

__all__ = ["PROFILE_FIELDS", "profile_section"]

#: The fields of ``rnngrad profile --json``'s layers that the page keeps.
PROFILE_FIELDS = ("grad_norm", "log10_ratio", "decay_rate", "horizon", "saturation")


def _layer_label(layer: LayerProfile, *, model: ReportModel, models: list[ReportModel]) -> str:
    return legend_label(model, layer.name, models)


def profile_section(
    models: list[ReportModel], *, initial: list[ReportModel] | None = None
) -> tuple[Section, dict[str, float]]:
    """The profile of every layer of ``models``; with ``initial`` (the same models as
    initialised, on the same input) a second figure compares them before training."""
    rate = any(rate_network_of(model.module, model.recurrent) is not None for model in models)
    figure = Figure(
        "gradient_profile",
        t("per-time-step gradient ||dL/dx_t|| at the currents")
        if rate
        else t("per-time-step gradient ||dL/dh_t||"),
        "t",
        "||dL/dx_t||" if rate else "||dL/dh_t||",
        log_y=True,
        integer_x=True,
    )
    numbers: dict[str, Any] = {}
    stories, saturation, labels = [], {}, set()
    for model in models:
        profile = gradient_profile(
            model.module, model.inputs, loss=model.loss, module=model.recurrent
        )
        traces = profile_traces(profile, partial(_layer_label, model=model, models=models))
        for trace in traces if len(models) > 1 else ():
            trace.group = model.name
        figure.traces.extend(traces)
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
            path = t(", carried by the cell state c") if layer.carried_by == "c" else ""
            stories.append(
                t("{name}: {verdict}, decay {decay}, horizon {horizon}{path}", name=label,
                  verdict=verdict_word(layer.verdict.label), decay=decay, horizon=horizon,
                  path=path)
            )  # fmt: skip
            labels.add(layer.verdict.label)
            saturation[name] = layer.saturation
            entry = layer_json(layer)
            numbers[name] = {key: entry[key] for key in PROFILE_FIELDS}
            # The page's own words for the order, and the label alone for the verdict.
            numbers[name]["summary_order"] = layer.summary_order
            numbers[name]["verdict"] = layer.verdict.label
    verdict = labels.pop() if len(labels) == 1 else "mixed"
    sentence = (
        "; ".join(stories)
        + ". "
        + t(
            "A nat is the natural logarithm's unit: a decay of r nats per step multiplies the "
            "gradient by e^-r at each step back (0.1 nats per step: by 0.905)."
        )
    )
    figures = [figure]
    if initial:
        before, numbers["at_initialisation"], words = _initial_figure(initial)
        figures.append(before)
        sentence += " " + words
    section = Section("profile", t("The gradient profile"), sentence, verdict, figures, numbers)
    return section, saturation


def _initial_figure(models: list[ReportModel]) -> tuple[Figure, dict[str, Any], str]:
    """The gradient carried back through each model as initialised, on the same input:
    ``||dL/dh_t||`` for each, and ``||dL/dc_t||`` too for an LSTM (its cell path)."""
    figure = Figure(
        "gradient_at_initialisation",
        t("before training, the same input: the gradient carried back from t = T"),
        "t",
        t("carried gradient"),
        log_y=True,
        integer_x=True,
    )
    numbers: dict[str, Any] = {}
    stories = []
    for model in models:
        layer = gradient_profile(model.module, model.inputs, loss=model.loss).layers[0]
        steps = list(range(1, layer.mean_grad_norm.size + 1))
        cell = layer.mean_carried_c_norm
        hidden = layer.mean_carried_h_norm if cell is not None else layer.mean_carried_norm
        figure.traces.append(
            Trace(t("{name}: ||dL/dh_t||", name=model.name), steps, list(hidden),
                  group=model.name)
        )  # fmt: skip
        if cell is not None:
            figure.traces.append(
                Trace(t("{name}: ||dL/dc_t||", name=model.name), steps, list(cell), dash=True,
                      group=model.name)
            )  # fmt: skip
        numbers[model.name] = {
            "verdict": layer.verdict.label,
            "decay_rate": None if layer.decay_rate is None else finite_or_none(layer.decay_rate),
            "horizon": layer.horizon,
            "carried_by": layer.carried_by,
        }
        decay = (
            t("undefined")
            if layer.decay_rate is None
            else t("{rate} nats per step", rate=f"{layer.decay_rate:.3g}")
        )
        path = t(", carried by the cell state c") if layer.carried_by == "c" else ""
        stories.append(t("{name} decays {decay}{path}", name=model.name, decay=decay, path=path))
    words = t("Before training, on the same input: {stories}.", stories="; ".join(stories))
    return figure, numbers, words
