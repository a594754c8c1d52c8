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
the page's header). Without a model the report runs on built-in defaults: the
textbook example, three ``W_hh`` (contracting, expanding, non-normal), and the lab's
short sweep of the classic cells on the adding problem at T = 50, whose tanh RNN and
chrono-initialised LSTM are the page's models (profiled as initialised and as
trained)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.report.models import (
    ReportModel,
    built_in_models,
    built_in_sweep,
    on_device,
    rate_network_of,
    recurrent_blocks,
    recurrent_module_of,
)
from rnngrad.report.section import Section
from rnngrad.report.sections.lab import lab_section
from rnngrad.report.sections.lyapunov import lyapunov_section
from rnngrad.report.sections.profile import profile_section
from rnngrad.report.sections.selective import memory_section, selective_sections
from rnngrad.report.sections.spectrum import model_spectrum_section, spectrum_section
from rnngrad.report.sections.textbook import (
    activation_section,
    matrix_explorer_inputs,
    scalar_section,
)
from rnngrad.report.teaching import (
    activation_explanation,
    lab_explanation,
    lyapunov_explanation,
    profile_explanation,
    spectrum_explanation,
)
from rnngrad.show.i18n import language, t
from rnngrad.theory.spectrum import example_matrix

__all__ = ["Section", "build_sections"]


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
            model, the report shows its own short sweep of the classic cells).
        seed: seeds everything random.
        progress: called with the name of each stage as it starts.
        device: where the profiles and Lyapunov spectra run (``"cpu"`` by
            default, ``"cuda"``, ``"cuda:N"`` or ``"auto"``); the model is copied
            there, the built-in examples train there, the spectra of ``W_hh``
            are computed on the CPU.
        lang: the language of the titles, sentences, figures and explanations
            (``"en"`` or ``"ko"``); the numbers are the same in every language.
    """
    with language(lang), tempfile.TemporaryDirectory() as folder:
        return _build_sections(
            module=module, name=name, inputs=inputs, loss=loss, recurrent=recurrent,
            quick=quick, lab=lab, seed=seed, progress=progress, device=device,
            scratch=Path(folder),
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
    scratch: Path,
) -> list[Section]:
    from rnngrad.devices import resolve_device
    from rnngrad.limits import check_seed

    check_seed(seed)
    where = resolve_device(device)
    report = progress or (lambda stage: None)
    report("the scalar chain rule")
    scalar = scalar_section()
    initial: list[ReportModel] = []
    sweep = None
    if module is None:
        report("training the classic cells briefly on the adding problem")
        sweep = built_in_sweep(scratch / "sweep", quick=quick, seed=seed)
        models, initial = built_in_models(sweep, quick=quick, seed=seed, device=where)
        matrices = {
            "contracting (random, rho 0.8)": example_matrix(
                "random", hidden=64, radius=0.8, seed=seed
            ),
            "expanding (random, rho 1.2)": example_matrix(
                "random", hidden=64, radius=1.2, seed=seed
            ),
            "non-normal (rho 0.9)": example_matrix("nonnormal", hidden=64, radius=0.9, seed=seed),
        }
    elif _is_selective(module, recurrent) or _is_mlstm(module, recurrent):
        if inputs is None:
            raise InvalidInputError(
                f"{name} is read through its selective recurrences, whose input size rnngrad "
                "cannot tell: give the model's input (inputs=, --input FILE)"
            )
        models = [ReportModel(name, module, inputs, loss, recurrent)]
        matrices = {}
    else:
        _refuse_xlstm(module)
        recurrent_module = recurrent_module_of(module, recurrent)
        layout_inputs = inputs if inputs is not None else _default_inputs(recurrent_module, seed)
        models = [ReportModel(name, module, layout_inputs, loss, recurrent)]
        matrices = recurrent_blocks(recurrent_module)
    report("the spectrum of W_hh")
    models = [on_device(model, where) for model in models]
    selective = module is not None and (
        _is_selective(module, recurrent) or _is_mlstm(module, recurrent)
    )
    if module is None:
        spectrum = spectrum_section(matrices)
        spectrum.numbers["matrix_explorer_inputs"] = matrix_explorer_inputs()
    elif selective:
        spectrum, selective_lyapunov = selective_sections(models[0])
    else:
        spectrum = model_spectrum_section(models[0], matrices, quick, seed, where)
    report("the gradient profiles")
    profile, saturation = profile_section(models, initial=initial)
    activations = activation_section(saturation)
    report("the Lyapunov spectra")
    lyapunov = selective_lyapunov if selective else lyapunov_section(models, quick, seed, where)
    report("the remedies lab")
    if lab is None and sweep is not None:  # the built-in page shows its own short sweep
        remedies = lab_section(sweep, built_in=True)
    else:
        remedies = lab_section(lab)
    activations.explanation = activation_explanation()
    rate = module is not None and rate_network_of(module, recurrent) is not None
    spectrum.explanation = spectrum_explanation(
        model=module is not None,
        selective=selective,
        mlstm=module is not None and _is_mlstm(module, recurrent),
        rate=rate,
    )
    profile.explanation = profile_explanation()
    lyapunov.explanation = lyapunov_explanation(rate=rate)
    if remedies.figures:
        remedies.explanation = lab_explanation()
    if module is None:  # the textbook's order
        return _numbered([scalar, activations, spectrum, profile, lyapunov, remedies])
    # The reader's model first; the textbook example is the appendix.
    # A selective scan has no tanh between its states: no saturation to show; a diagonal
    # or selective recurrence shows its states' sensitivity to its own parameters (the
    # mLSTM's forget gate is not one of the per-mode parameters it reads).
    middle = [] if selective else [activations]
    if not _is_mlstm(module, recurrent) and (selective or _is_diagonal(models[0])):
        report("the curse of memory")
        middle.insert(0, memory_section(models[0]))
    sections = _numbered([profile, spectrum, lyapunov, *middle, remedies])
    scalar.title = t("Appendix: the scalar chain rule (the textbook example)")
    return [*sections, scalar]


def _is_diagonal(model: ReportModel) -> bool:
    """The model's recurrence is one of rnngrad's diagonal layers."""
    from rnngrad.modern.base import DiagonalRecurrence

    return isinstance(recurrent_module_of(model.module, model.recurrent), DiagonalRecurrence)


def _refuse_xlstm(module: nn.Module) -> None:
    """An xLSTM model with sLSTM blocks has no page (its profile has: rnngrad.gradient_profile,
    rnngrad profile); said in one line rather than as a missing LSTM."""
    from rnngrad.cells import find_recurrent_modules
    from rnngrad.profile.mlstm import mlstm_cells
    from rnngrad.profile.slstm import slstm_cells

    if (mlstm_cells(module) or slstm_cells(module)) and not find_recurrent_modules(module):
        from rnngrad.errors import UnsupportedModuleError

        raise UnsupportedModuleError(
            f"{type(module).__name__} is an xLSTM model with sLSTM blocks: its gradient "
            "profile is there (rnngrad profile, rnngrad.gradient_profile), its page is not "
            "(an sLSTM's recurrence is dense per head, with no per-mode eigenvalue to show); "
            "a stack of mLSTM blocks has one"
        )


def _default_inputs(recurrent_module: nn.Module, seed: int) -> torch.Tensor:
    """Seeded N(0, 1) inputs, 8 sequences of 100 steps, in the recurrent module's layout
    and dtype (for a model whose recurrent module reads the model's input)."""
    from rnngrad.rate.network import RateRNN

    if isinstance(recurrent_module, RateRNN):
        size, batch_first = recurrent_module.input_size, recurrent_module.batch_first
    else:
        from rnngrad.cells import describe_module

        layout = describe_module(recurrent_module)
        size, batch_first = layout.input_size, layout.batch_first
    generator = torch.Generator().manual_seed(seed)
    shape = (8, 100, size) if batch_first else (100, 8, size)
    dtype = next(recurrent_module.parameters()).dtype
    return torch.randn(shape, generator=generator, dtype=dtype)


def _is_mlstm(module: nn.Module, recurrent: str | None) -> bool:
    """The model's recurrences are xLSTM's mLSTM cells only, read through their forget gates
    (each head's memory ``C_t = f_t C_{t-1} + i_t v_t k_t^T``: a diagonal recurrence)."""
    from rnngrad.cells import find_recurrent_modules
    from rnngrad.profile.mlstm import mlstm_cells
    from rnngrad.profile.slstm import slstm_cells

    if recurrent is not None:
        return False
    return (
        bool(mlstm_cells(module))
        and not slstm_cells(module)
        and not (find_recurrent_modules(module))
    )


def _is_selective(module: nn.Module, recurrent: str | None) -> bool:
    """The model is read through its selective scans (mambapy's blocks, the protocol)."""
    from rnngrad.cells import find_recurrent_modules
    from rnngrad.modern.selective import is_selective_scan, selective_blocks

    if recurrent is not None:
        named = dict(module.named_modules()).get(recurrent)
        return named is not None and is_selective_scan(named)
    return bool(selective_blocks(module)) and not find_recurrent_modules(module)


def _numbered(sections: list[Section]) -> list[Section]:
    for number, section in enumerate(sections, start=1):
        section.title = f"{number}. {section.title}"
    return sections
