"""The report's numbers: every section computed from the core, as data.

Sections follow the reasoning of the textbook argument and go past it:

1. the scalar chain rule (and an explorer the page recomputes in the browser);
2. tanh, its derivative, and how saturated the models' units are;
3. the eigenvalues and singular values of ``W_hh`` and the transient growth of ``||W^k||``;
4. the per-time-step gradient profile of every layer;
5. the Lyapunov spectrum, with the mean-field value for a random network;
6. the lab's comparison of remedies, when a sweep's results are given.

For the reader's model its own sections come first (the profile, the spectrum,
the Lyapunov spectrum, saturation, the lab) and the textbook example is the
appendix; legends then name layers and directions only (the model's name is in
the page's header). Without a model the report runs on built-in defaults: the textbook example,
three ``W_hh`` (contracting, expanding, non-normal), and a tanh RNN and an
LSTM trained briefly by the lab on the adding problem.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.jsonout import scalar_json
from rnngrad.logspace import finite_or_none
from rnngrad.lyapunov.result import lyapunov_trace
from rnngrad.lyapunov.spectrum import lyapunov_spectrum, random_tanh_network
from rnngrad.profile.front import gradient_profile
from rnngrad.profile.result import LayerProfile, profile_traces
from rnngrad.report.models import (
    ReportModel,
    default_models,
    float64_copy,
    on_device,
    recurrent_blocks,
    recurrent_module_of,
    state_size,
)
from rnngrad.report.section import Section
from rnngrad.report.sections.lab import built_in_sweep, lab_section
from rnngrad.report.teaching import (
    activation_explanation,
    lab_explanation,
    lyapunov_explanation,
    profile_explanation,
    scalar_explanation,
    spectrum_explanation,
)
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import growth_sentence, language, shown, t, verdict_word
from rnngrad.theory.activations import get_activation
from rnngrad.theory.meanfield import mean_field_lambda1
from rnngrad.theory.scalar import TEXTBOOK_EXAMPLE, scalar_chain_rule, scalar_figure, scalar_inputs
from rnngrad.theory.spectrum import example_matrix, recurrent_spectrum, spectrum_figures

__all__ = [
    "EXPLORER_STEPS",
    "Section",
    "build_sections",
    "explorer_inputs",
    "explorer_matrix",
    "matrix_explorer_inputs",
]

#: The explorer's longest sequence; its inputs are the textbook's, then N(0, 1) draws.
EXPLORER_STEPS = 100


def explorer_inputs() -> list[float]:
    """``x_1..x_100`` of the explorer: the textbook's three, then seeded N(0, 1) values."""
    textbook = [float(v) for v in TEXTBOOK_EXAMPLE["x"]]  # type: ignore[union-attr]
    rest = scalar_inputs(EXPLORER_STEPS - len(textbook), 0)
    return textbook + [float(v) for v in rest]


def matrix_explorer_inputs() -> list[list[float]]:
    """``u_1..u_100`` of the matrix explorer's tanh network, ``(100, 2)``: seeded
    ``0.5 N(0, 1)`` draws."""
    draws = np.random.default_rng(1).standard_normal((EXPLORER_STEPS, 2)) * 0.5
    return [[float(v) for v in row] for row in draws]


def explorer_matrix(rotation: float, scale: float, shear: float) -> np.ndarray:
    """The matrix explorer's ``W = V (scale R(rotation)) V^{-1}`` with ``V = [[1, shear],
    [0, 1]]``: its eigenvalues are ``scale * exp(+-i rotation)`` whatever the shear, which
    only tilts the eigenvectors towards each other (a non-normal ``W`` for ``shear != 0``)."""
    cos, sin = np.cos(rotation), np.sin(rotation)
    result: np.ndarray = scale * np.array(
        [[cos + shear * sin, -sin * (1 + shear**2)], [sin, cos - shear * sin]]
    )
    return result


def _scalar_section() -> Section:
    result = scalar_chain_rule()
    figure = scalar_figure(result, t("dy/dh_k against its bound, textbook example"))
    factors = ", ".join(f"{v:.4f}" for v in result.factors)
    sentence = (
        growth_sentence(result.verdict)
        + " "
        + t("With a = {a}, the chain factors dh_(k+1)/dh_k are {factors}, each below "
            "|a| = {abs_a}, so dy/dh_1 = {gradient} against the bound {bound}.",
            a=f"{result.a:g}", factors=factors, abs_a=f"{abs(result.a):g}",
            gradient=f"{result.dy_dh[0]:.4f}", bound=f"{result.bound[0]:.4f}")
    )  # fmt: skip
    numbers = {"textbook": scalar_json(result), "explorer_inputs": explorer_inputs()}
    return Section(
        "scalar", t("The scalar chain rule"), sentence, result.verdict.label, [figure], numbers,
        explanation=scalar_explanation(result),
    )  # fmt: skip


def _activation_section(saturation: dict[str, float]) -> Section:
    tanh = get_activation("tanh")
    z = np.linspace(-4, 4, 161)
    figure = Figure(
        "tanh_and_derivative", t("tanh and its derivative"), "z", t("value"),
        [Trace("tanh(z)", list(z), list(tanh.function(z))),
         Trace("tanh'(z) = 1 - tanh(z)^2", list(z), list(tanh.derivative(z)))],
    )  # fmt: skip
    if saturation:
        worst = max(saturation, key=lambda k: saturation[k])
        detail = "; ".join(f"{shown(name)}: {share:.1%}" for name, share in saturation.items())
        sentence = t(
            "tanh' is at most 1 (at z = 0) and falls below 0.1 once |z| > 1.82; the most "
            "saturated is {worst}, where {share} of the derivatives are below 10% of their "
            "maximum ({detail}).", worst=shown(worst), share=f"{saturation[worst]:.1%}",
            detail=detail,
        )  # fmt: skip
    else:
        sentence = t("tanh' is at most 1 (at z = 0) and falls below 0.1 once |z| > 1.82.")
    return Section("activations", t("tanh and saturation"), sentence, None, [figure],
                   {"gamma": tanh.gamma, "saturation": saturation})  # fmt: skip


def _trajectory_systems(module: nn.Module) -> list[tuple[str, dict[str, int]]]:
    """The recurrences whose state Jacobians the spectrum section follows: each layer
    and direction of a bidirectional module, else the whole (stacked) state."""
    from rnngrad.cells import describe_module

    layout = describe_module(module)
    if layout.bidirectional:
        return [(f"layer {layer}{suffix}", {"layer": layer, "direction": direction})
                for layer in range(layout.num_layers)
                for direction, suffix in ((0, ""), (1, " reverse"))]  # fmt: skip
    return [("all layers" if layout.num_layers > 1 else "the recurrence", {})]


def _model_spectrum_section(
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
    blocks = _spectrum_section(matrices)
    if isinstance(module, DiagonalRecurrence):  # its eigenvalues are the recurrence, exactly
        return blocks
    steps = 60 if quick else 150
    figure = Figure(
        "jacobian_singular_values",
        t("largest singular value of dh_T/dh_k, the product of the real Jacobians"),
        t("T - k (steps back)"), "sigma_1(dh_T/dh_k)", log_y=True,
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
        stories.append(
            t("{name}: sigma_1 of dh_T/dh_1 over {steps} steps is {value}, {verdict}",
              name=shown(label), steps=steps - 1, value=_power_of_ten(float(log10_top[-1])),
              verdict=verdict_word(verdict.label))
        )  # fmt: skip
    for name, entry in blocks.numbers.items():
        numbers[f"W_hh block {name}"] = entry
    for block_figure in blocks.figures:
        block_figure.selectable = True
    verdict_label = labels.pop() if len(labels) == 1 else "mixed"
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


def _spectrum_section(matrices: dict[str, np.ndarray]) -> Section:
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
    eigen, singular, growth = spectrum_figures(results)
    numbers: dict[str, Any] = {}
    stories = []
    for name, result in results.items():
        label = shown(name)
        numbers[name] = {
            "spectral_radius": result.spectral_radius,
            "norm2": result.norm2,
            "eigvec_condition": finite_or_none(result.eigvec_condition),
            "max_transient_growth": finite_or_none(result.transient.max_growth),
            "transient_peak_step": result.transient.peak_step,
            "verdict": result.verdict.label,
            "sentence": result.verdict.sentence,
        }  # fmt: skip
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


def _label(model: ReportModel, part: str, models: list[ReportModel]) -> str:
    """A legend entry: the part alone for the reader's one model (its name is in the page's
    header), prefixed with the model's name when the page compares several."""
    return part if len(models) == 1 else f"{model.name}, {part}"


def _layer_label(layer: LayerProfile, *, model: ReportModel, models: list[ReportModel]) -> str:
    return _label(model, layer.name, models)


def _profile_section(models: list[ReportModel]) -> tuple[Section, dict[str, float]]:
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
            name = _label(model, layer.name, models)
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
            numbers[name] = {
                "grad_norm": [finite_or_none(v) for v in layer.mean_grad_norm],
                "log10_ratio": None
                if layer.log10_ratio is None
                else finite_or_none(layer.log10_ratio),
                "decay_rate": layer.decay_rate,
                "horizon": layer.horizon,
                "summary_order": layer.summary_order,
                "saturation": layer.saturation,
                "verdict": layer.verdict.label,
            }
    verdict = labels.pop() if len(labels) == 1 else "mixed"
    sentence = "; ".join(stories) + "."
    section = Section("profile", t("The gradient profile"), sentence, verdict, [figure], numbers)
    return section, saturation


def _lyapunov_section(
    models: list[ReportModel], quick: bool, seed: int, device: torch.device
) -> Section:
    figure = Figure("lyapunov_spectrum", t("Lyapunov spectrum"), "i", t("lambda_i (nats per step)"))
    numbers: dict[str, Any] = {}
    stories = []
    steps = 150 if quick else 400
    systems: list[tuple[str, nn.Module, Any, dict[str, int]]] = []
    for model in models:
        module = recurrent_module_of(model.module, model.recurrent)
        if getattr(module, "bidirectional", False):
            # One causal recurrence per layer and direction, each driven by its real input.
            for layer in range(int(getattr(module, "num_layers", 1))):
                for direction, suffix in ((0, ""), (1, " reverse")):
                    where = {"layer": layer, "direction": direction}
                    label = _label(model, f"layer {layer}{suffix}", models)
                    systems.append((label, module, "random", where))
            continue
        systems.append((_label(model, "the recurrence", models), module, "random", {}))
    gain, size = 2.0, 128
    random_network = random_tanh_network(size, gain, seed=seed)
    reference = f"random tanh network (N = {size}, g = {gain:g})"
    systems.append((reference, random_network, "zeros", {}))
    for name, module, inputs, where in systems:
        copy = float64_copy(module).to(device)
        k = min(32, state_size(copy, bool(where)))
        result = lyapunov_spectrum(
            copy, steps=steps, warmup=100, k=k, batch=2, seed=seed, inputs=inputs,
            layer=where.get("layer"), direction=where.get("direction", 0), progress=False,
        )  # fmt: skip
        label = shown(name)
        figure.traces.append(lyapunov_trace(result, name))
        numbers[name] = {
            "exponents": [finite_or_none(v) for v in result.exponents],
            "lambda1": finite_or_none(result.exponents[0]),
            "kaplan_yorke_dim": result.kaplan_yorke_dim,
        }
        stories.append(
            t("{name}: lambda_1 = {value} nats per step", name=label,
              value=f"{result.exponents[0]:.3g}")
        )  # fmt: skip
    prediction = mean_field_lambda1(gain)
    numbers["mean_field_lambda1"] = prediction.lambda1
    largest = len(figure.traces[-1].x) if figure.traces else 1
    figure.traces.append(
        Trace(
            t("mean field, g = {gain}", gain=f"{gain:g}"),
            [1, largest],
            [prediction.lambda1] * 2,
            dash=True,
        )
    )
    sentence = t(
        "{stories}. Mean-field theory predicts lambda_1 = {value} for the random network "
        "(N -> infinity); negative exponents mean gradients over long spans vanish, positive "
        "ones that they can explode.", stories="; ".join(stories),
        value=f"{prediction.lambda1:.3g}",
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


def build_sections(
    *,
    module: nn.Module | None = None,
    name: str = "model",
    inputs: Any = None,
    loss: Any = "last",
    recurrent: str | None = None,
    quick: bool = False,
    lab: Path | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    device: str | torch.device | None = None,
    lang: str = "en",
) -> list[Section]:
    """Every section's sentence, verdict, figures and numbers.

    Args:
        module: the model to analyse (``None``: the built-in defaults).
        name: its name on the page.
        inputs: its input for the profile, a tensor or a tuple of the model's
            arguments (default: seeded N(0, 1), B = 8, T = 100, for a model whose
            recurrent module reads the model's input).
        loss: the profile's loss (``"last"``, ``"sum"`` or a callable on the
            model's output).
        recurrent: the recurrent submodule's name, when the model has several.
        quick: shorter runs (for tests and previews).
        lab: a sweep's folder for the remedies section (without it and without a
            model, the report runs its own quick sweep of the classic cells).
        seed: seeds everything random.
        progress: called with the name of each stage as it starts.
        device: where the profiles and Lyapunov spectra run (``"cpu"`` by
            default, ``"cuda"``, ``"cuda:N"`` or ``"auto"``); the model is copied
            there, the built-in examples train there, the spectra of ``W_hh``
            are computed on the CPU.
        lang: the language of the titles, sentences, figures and explanations
            (``"en"`` or ``"ko"``); the numbers are the same in every language.
    """
    with language(lang):
        return _build_sections(
            module=module, name=name, inputs=inputs, loss=loss, recurrent=recurrent,
            quick=quick, lab=lab, seed=seed, progress=progress, device=device,
        )  # fmt: skip


def _build_sections(
    *,
    module: nn.Module | None,
    name: str,
    inputs: Any,
    loss: Any,
    recurrent: str | None,
    quick: bool,
    lab: Path | None,
    seed: int,
    progress: Callable[[str], None] | None,
    device: str | torch.device | None,
) -> list[Section]:
    from rnngrad.devices import resolve_device
    from rnngrad.limits import check_seed

    check_seed(seed)
    where = resolve_device(device)
    report = progress or (lambda stage: None)
    report("the scalar chain rule")
    scalar = _scalar_section()
    if module is None:
        models = default_models(quick, seed, report, where)
        matrices = {
            "contracting (random, rho 0.8)": example_matrix(
                "random", hidden=64, radius=0.8, seed=seed
            ),
            "expanding (random, rho 1.2)": example_matrix(
                "random", hidden=64, radius=1.2, seed=seed
            ),
            "non-normal (rho 0.9)": example_matrix("nonnormal", hidden=64, radius=0.9, seed=seed),
        }
    else:
        recurrent_module = recurrent_module_of(module, recurrent)
        layout_inputs = inputs
        if layout_inputs is None:
            from rnngrad.cells import describe_module

            layout = describe_module(recurrent_module)
            generator = torch.Generator().manual_seed(seed)
            shape = (
                (8, 100, layout.input_size) if layout.batch_first else (100, 8, layout.input_size)
            )
            dtype = next(recurrent_module.parameters()).dtype
            layout_inputs = torch.randn(shape, generator=generator, dtype=dtype)
        models = [ReportModel(name, module, layout_inputs, loss, recurrent)]
        matrices = recurrent_blocks(recurrent_module)
    report("the spectrum of W_hh")
    models = [on_device(model, where) for model in models]
    if module is None:
        spectrum = _spectrum_section(matrices)
        spectrum.numbers["matrix_explorer_inputs"] = matrix_explorer_inputs()
    else:
        spectrum = _model_spectrum_section(models[0], matrices, quick, seed, where)
    report("the gradient profiles")
    profile, saturation = _profile_section(models)
    activations = _activation_section(saturation)
    report("the Lyapunov spectra")
    lyapunov = _lyapunov_section(models, quick, seed, where)
    report("the remedies lab")
    if lab is None and module is None:  # the built-in page runs its own quick sweep
        with tempfile.TemporaryDirectory() as folder:
            sweep = built_in_sweep(Path(folder) / "sweep", quick=quick, seed=seed)
            remedies = lab_section(sweep, built_in=True)
    else:
        remedies = lab_section(lab)
    activations.explanation = activation_explanation()
    spectrum.explanation = spectrum_explanation(model=module is not None)
    profile.explanation = profile_explanation()
    lyapunov.explanation = lyapunov_explanation()
    if remedies.figures:
        remedies.explanation = lab_explanation()
    if module is None:  # the textbook's order
        return _numbered([scalar, activations, spectrum, profile, lyapunov, remedies])
    # The reader's model first; the textbook example is the appendix.
    sections = _numbered([profile, spectrum, lyapunov, activations, remedies])
    scalar.title = t("Appendix: the scalar chain rule (the textbook example)")
    return [*sections, scalar]


def _numbered(sections: list[Section]) -> list[Section]:
    for number, section in enumerate(sections, start=1):
        section.title = f"{number}. {section.title}"
    return sections
