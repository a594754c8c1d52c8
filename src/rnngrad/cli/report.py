"""``rnngrad report``: the main job, one page that explains a network's gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rnngrad.cli._common import DeviceOption, DtypeName, app, checked_seed, stderr_progress
from rnngrad.cli._models import (
    MODEL_HELP,
    LossName,
    ModelArgsOption,
    ModuleOption,
    StateDictOption,
    TargetOption,
    choose_loss,
    load_model,
    load_model_inputs,
)
from rnngrad.errors import InvalidInputError


@app.command()
def report(
    model: Annotated[
        str | None, typer.Option("--model", help=MODEL_HELP + " Without it, built-in examples.")
    ] = None,
    model_args: ModelArgsOption = None,
    module: ModuleOption = None,
    state_dict: StateDictOption = None,
    input_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            help="Input for the profile (.pt or .npy; int64 token ids for a model with an "
            "embedding); repeat it for a model that takes several.",
        ),
    ] = None,
    target_file: TargetOption = None,
    loss: Annotated[
        LossName,
        typer.Option(
            "--loss",
            help="The profile's loss: last, sum (on the recurrent module's output), "
            "cross-entropy or mse (on the model's output, with --target).",
        ),
    ] = LossName.last,
    out: Annotated[Path, typer.Option("--out", help="Folder of the page.")] = Path(
        "rnngrad-report"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Shorter runs: a preview.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    lab: Annotated[
        Path | None, typer.Option("--lab", help="A sweep's folder: adds the remedies section.")
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seeds everything random.", callback=checked_seed)
    ] = 0,
    dtype: Annotated[DtypeName, typer.Option("--dtype", help="Of the model.")] = (
        DtypeName.float32
    ),
    device: DeviceOption = "cpu",
    lang: Annotated[
        str, typer.Option("--lang", help="The page's language: en, or ko (Korean).")
    ] = "en",
) -> None:
    """Explain a network's gradients on one self-contained page (DIR/index.html)."""
    import torch
    from rich.progress import BarColumn, TextColumn

    from rnngrad.devices import resolve_device
    from rnngrad.report.build import build_sections
    from rnngrad.report.folder import prepare_folder
    from rnngrad.report.page import page_title, write_report
    from rnngrad.show.i18n import verdict_word

    resolve_device(device)  # an absent device is refused before any work
    from rnngrad.show.i18n import catalog

    catalog(lang)  # an unknown language too
    prepare_folder(out, force)
    if lab is not None:
        from rnngrad.lab.sweep import sweep_summary

        sweep_summary(lab)  # a missing, damaged or foreign table is refused before any work
    network = None
    inputs: Any = None
    profile_loss: Any = "last"
    title = page_title(None, lang)
    if model is not None:
        torch_dtype = torch.float64 if dtype == DtypeName.float64 else torch.float32
        loaded = load_model(model, model_args, state_dict, module, seed=seed, dtype=torch_dtype)
        network = loaded.model
        if input_files:
            tensors = load_model_inputs(loaded, input_files, torch_dtype)
            inputs = tuple(tensors) if len(tensors) > 1 else tensors[0]
        elif loaded.is_user_model:
            raise InvalidInputError("a model of your own needs its input: --input FILE")
        profile_loss = choose_loss(loss, target_file, torch_dtype)
        title = page_title(loaded.label + (f" ({module})" if module else ""), lang)
    else:
        given = {
            "--state-dict": state_dict, "--input": input_files, "--model-args": model_args,
            "--module": module, "--target": target_file,
        }  # fmt: skip
        for flag, value in given.items():
            if value:
                raise InvalidInputError(f"{flag} needs --model")
    stages = 7 if network is None else 5
    with stderr_progress(
        TextColumn("[bold]report[/]"), BarColumn(), TextColumn("{task.description}")
    ) as bar:
        handle = bar.add_task("starting", total=stages)

        def stage(name: str) -> None:
            bar.update(handle, advance=1, description=name)

        sections = build_sections(
            module=network, name=model or "model", inputs=inputs, loss=profile_loss,
            recurrent=module, quick=quick, lab=lab, seed=seed, progress=stage, device=device,
            lang=lang,
        )  # fmt: skip
        page = write_report(sections, out, title, lang=lang)
    summary = Console()
    for section in sections:
        verdict = "—" if section.verdict is None else verdict_word(section.verdict, lang)
        summary.print(f"[bold]{section.title}[/] ({verdict}): {section.sentence}")
    summary.print(f"page: {page}")
