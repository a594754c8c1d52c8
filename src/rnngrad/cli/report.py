"""``rnngrad report``: the main job, one page that explains a network's gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rnngrad.cli._common import DtypeName, app
from rnngrad.errors import InvalidInputError


@app.command()
def report(
    model: Annotated[
        str | None, typer.Option("--model", help="Module spec; without it, built-in defaults.")
    ] = None,
    state_dict: Annotated[
        Path | None, typer.Option("--state-dict", help="Weights for --model (.pt or .safetensors).")
    ] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Input for the profile (.pt or .npy).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder of the page.")] = Path(
        "rnngrad-report"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Shorter runs: a preview.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    lab: Annotated[
        Path | None, typer.Option("--lab", help="A sweep's folder: adds the remedies section.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds everything random.")] = 0,
    dtype: Annotated[DtypeName, typer.Option("--dtype", help="Of the model.")] = (
        DtypeName.float32
    ),
) -> None:
    """Explain a network's gradients on one self-contained page (DIR/index.html)."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn

    from rnngrad.report.build import build_sections
    from rnngrad.report.page import prepare_folder, write_report
    from rnngrad.spec import build_module, load_input, load_state_dict, parse_spec

    prepare_folder(out, force)
    if lab is not None and not (lab / "results.parquet").exists():
        raise InvalidInputError(f"{lab}: no results.parquet (has the sweep run?)")
    module = None
    inputs = None
    title = "rnngrad report: built-in examples"
    if model is not None:
        torch_dtype = torch.float64 if dtype == DtypeName.float64 else torch.float32
        spec = parse_spec(model)
        module = build_module(spec, seed=seed, dtype=torch_dtype)
        if state_dict is not None:
            load_state_dict(module, state_dict)
        if input_file is not None:
            inputs = load_input(input_file, torch_dtype)
        title = f"rnngrad report: {spec.text}"
    elif state_dict is not None or input_file is not None:
        raise InvalidInputError("--state-dict and --input need --model")
    stages = 7 if module is None else 5
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]report[/]"), BarColumn(), TextColumn("{task.description}"),
                  console=console, transient=True) as bar:  # fmt: skip
        handle = bar.add_task("starting", total=stages)

        def stage(name: str) -> None:
            bar.update(handle, advance=1, description=name)

        sections = build_sections(
            module=module, name=model or "model", inputs=inputs, quick=quick, lab=lab, seed=seed,
            progress=stage,
        )  # fmt: skip
        page = write_report(sections, out, title)
    summary = Console()
    for section in sections:
        verdict = section.verdict or "—"
        summary.print(f"[bold]{section.title}[/] ({verdict}): {section.sentence}")
    summary.print(f"page: {page}")
