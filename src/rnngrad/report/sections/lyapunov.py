"""The Lyapunov spectrum of each model's recurrence, beside a random network and the
mean-field prediction (for a rate network's page, the random rate network of the same
``delta`` and the leaky network's mean field)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnngrad.jsonout import lyapunov_json
from rnngrad.lyapunov.result import lyapunov_trace
from rnngrad.lyapunov.spectrum import lyapunov_spectrum, random_tanh_network
from rnngrad.rate.network import RateRNN, random_rate_network
from rnngrad.report.models import (
    ReportModel,
    float64_copy,
    recurrent_module_of,
    state_size,
)
from rnngrad.report.section import Section, legend_label
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import shown, t
from rnngrad.theory.leaky_meanfield import leaky_mean_field_lambda1
from rnngrad.theory.meanfield import mean_field_lambda1

__all__ = ["lyapunov_section"]


def _group(model: ReportModel, models: list[ReportModel]) -> str:
    """The colour's key: the model's name on a page of several models, else the trace's."""
    return model.name if len(models) > 1 else ""


def _rate_delta(models: list[ReportModel]) -> float | None:
    """The page's rate network's ``delta``, or ``None`` on a page without one."""
    for model in models:
        module = recurrent_module_of(model.module, model.recurrent)
        if isinstance(module, RateRNN):
            return module.delta
    return None


def lyapunov_section(
    models: list[ReportModel], quick: bool, seed: int, device: torch.device
) -> Section:
    figure = Figure("lyapunov_spectrum", t("Lyapunov spectrum"), "i",
                    t("lambda_i (nats per step)"), integer_x=True)  # fmt: skip
    numbers: dict[str, Any] = {}
    stories = []
    steps = 150 if quick else 400
    systems: list[tuple[str, nn.Module, Any, dict[str, int], str]] = []
    for model in models:
        module = recurrent_module_of(model.module, model.recurrent)
        if getattr(module, "bidirectional", False):
            # One causal recurrence per layer and direction, each driven by its real input.
            for layer in range(int(getattr(module, "num_layers", 1))):
                for direction, suffix in ((0, ""), (1, " reverse")):
                    where = {"layer": layer, "direction": direction}
                    label = legend_label(model, f"layer {layer}{suffix}", models)
                    systems.append((label, module, "random", where, _group(model, models)))
            continue
        label = legend_label(model, "the recurrence", models)
        systems.append((label, module, "random", {}, _group(model, models)))
    gain, size = 2.0, 128
    delta = _rate_delta(models)
    if delta is None:
        random_network: nn.Module = random_tanh_network(size, gain, seed=seed)
        reference = f"random tanh network (N = {size}, g = {gain:g})"
        prediction = mean_field_lambda1(gain).lambda1
    else:  # a rate network's page: the random rate network of the same delta, larger
        # (a small delta's finite-size correction is large: lambda_1 ~ 0.01 at N = 128,
        # ~0.018 at N = 256 against 0.022 for g = 2, delta = 0.2)
        size = 256
        random_network = random_rate_network(size, gain, delta, seed=seed)
        reference = f"random rate network (N = {size}, g = {gain:g}, delta = {delta:g})"
        prediction = leaky_mean_field_lambda1(gain, delta).lambda1
    systems.append((reference, random_network, "zeros", {}, reference))
    for name, module, inputs, where, group in systems:
        copy = float64_copy(module).to(device)
        k = min(32, state_size(copy, bool(where)))
        result = lyapunov_spectrum(
            copy, steps=steps, warmup=100, k=k, batch=2, seed=seed, inputs=inputs,
            layer=where.get("layer"), direction=where.get("direction", 0), progress=False,
        )  # fmt: skip
        label = shown(name)
        trace = lyapunov_trace(result, name)
        trace.group = group
        figure.traces.append(trace)
        entry = lyapunov_json(result, name, None)
        numbers[name] = {
            "exponents": entry["exponents"],
            "lambda1": entry["exponents"][0],
            "kaplan_yorke_dim": entry["kaplan_yorke_dim"],
            "summaries": entry["summaries"],  # per unit, for a full spectrum
        }
        stories.append(
            t("{name}: lambda_1 = {value} nats per step", name=label,
              value=f"{result.exponents[0]:.3g}")
        )  # fmt: skip
    numbers["mean_field_lambda1"] = prediction
    # The prediction is for lambda_1 alone: one marker at i = 1, in the colour of the
    # random network it predicts.
    figure.traces.append(
        Trace(
            t("mean-field lambda_1, g = {gain} (N -> infinity)", gain=f"{gain:g}")
            if delta is None
            else t(
                "mean-field lambda_1, g = {gain}, delta = {delta} (N -> infinity)",
                gain=f"{gain:g}",
                delta=f"{delta:g}",
            ),
            [1],
            [prediction],
            "markers",
            group=reference,
            symbol="diamond",
        )
    )
    sentence = t(
        "{stories}. Mean-field theory predicts lambda_1 = {value} for the random network "
        "(N -> infinity); negative exponents mean gradients over long spans vanish, positive "
        "ones that they can explode.", stories="; ".join(stories),
        value=f"{prediction:.3g}",
    )  # fmt: skip
    # The models' own exponents decide the verdict; the random network is the reference.
    measured = [
        v["lambda1"]
        for key, v in numbers.items()
        if isinstance(v, dict) and not key.startswith("random") and v["lambda1"] is not None
    ]
    if not measured:  # never the reference network's verdict in the model's place
        sentence += " " + t(
            "The models' own largest exponents are not finite numbers (a state that "
            "collapses to exactly zero), so this section gives no verdict about them."
        )
        return Section("lyapunov", t("The Lyapunov spectrum"), sentence, None, [figure], numbers)
    verdict = "chaotic" if max(measured) > 0 else "contracting"
    return Section("lyapunov", t("The Lyapunov spectrum"), sentence, verdict, [figure], numbers)
