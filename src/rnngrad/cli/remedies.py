"""``rnngrad train`` and ``rnngrad sweep``: the remedies lab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rnngrad.cli._common import (
    DeviceOption,
    _finite,
    _writable,
    app,
    checked_seed,
    stderr_progress,
)
from rnngrad.cli._output import emit_json
from rnngrad.errors import InvalidInputError


def _note_set_aside(path: str | None) -> None:
    if path is not None:
        import sys

        print(
            f"rnngrad: note: the checkpoint could not be read; it was set aside as {path} and "
            "the run started from scratch",
            file=sys.stderr,
        )


@app.command("train")
def train_command(
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="adding, copy, selective_copy, order, delayed_copy, delayed_xor, or a data "
            "set: mnist1d, mnist1d_shuffled, digits, digits_permuted.",
        ),
    ],
    cell: Annotated[
        str,
        typer.Option(
            "--cell",
            help="rnn (tanh), relu, lstm, gru, rate, lru, mingru, minlstm, indrnn, or (with "
            "the ssm extra) mamba, mlstm, slstm.",
        ),
    ],
    out_name: Annotated[
        str, typer.Option("--out", help="Folder of the run (resumed if it exists).")
    ],
    seq_len: Annotated[
        int,
        typer.Option("--seq-len", help="Sequence length T (a data set's own when left out)."),
    ] = 0,
    target_accuracy: Annotated[
        float | None,
        typer.Option("--target-accuracy", help="A data set's test accuracy that counts as solved."),
    ] = None,
    shuffle: Annotated[
        bool,
        typer.Option("--shuffle", help="mnist1d: the time axis in one fixed random order."),
    ] = False,
    permute: Annotated[
        bool, typer.Option("--permute", help="digits: the pixels in one fixed random order.")
    ] = False,
    hidden: Annotated[int, typer.Option("--hidden", help="Hidden units.")] = 64,
    init: Annotated[
        str,
        typer.Option("--init", help="default, orthogonal, identity, radius:R, or chrono:T (lstm)."),
    ] = "default",
    orthogonal_constraint: Annotated[
        bool, typer.Option("--orthogonal-constraint", help="Keep W_hh orthogonal (rnn, relu).")
    ] = False,
    forget_bias: Annotated[
        float | None, typer.Option("--forget-bias", help="LSTM forget-gate bias.")
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option("--layers", help="Stacked LRU layers, GLUs between them (lru) [default: 1]."),
    ] = None,
    r_min: Annotated[
        float | None,
        typer.Option("--r-min", help="Inner radius of the LRU's eigenvalue ring [default: 0.9]."),
    ] = None,
    r_max: Annotated[
        float | None,
        typer.Option("--r-max", help="Outer radius of the LRU's eigenvalue ring [default: 0.999]."),
    ] = None,
    readout: Annotated[
        str | None,
        typer.Option(
            "--readout",
            help="last or mean: the head reads the last step's output or the mean over the "
            "steps (tasks answered once per sequence) [default: last].",
        ),
    ] = None,
    delta: Annotated[
        float | None,
        typer.Option("--delta", help="The rate cell's dt/tau in (0, 1] [default: 0.5]."),
    ] = None,
    clip: Annotated[str, typer.Option("--clip", help="none, norm:V or value:V.")] = "norm:1.0",
    regularizer: Annotated[
        float,
        typer.Option("--regularizer", help="Weight of Pascanu et al.'s regulariser (rnn, relu)."),
    ] = 0.0,
    floss: Annotated[
        int | None,
        typer.Option(
            "--floss",
            help="Gradient flossing (Engelken 2023): push the K leading Lyapunov exponents "
            "towards 0 (rnn, relu, lstm, gru).",
        ),
    ] = None,
    floss_before: Annotated[
        int | None,
        typer.Option("--floss-before", help="Steps of flossing before training [default: 500]."),
    ] = None,
    floss_every: Annotated[
        int | None,
        typer.Option(
            "--floss-every", help="Also floss every N training steps [default: before only]."
        ),
    ] = None,
    floss_window: Annotated[
        int | None,
        typer.Option(
            "--floss-window",
            help="Steps of the inputs the exponents are measured over [default: the sequence].",
        ),
    ] = None,
    floss_weight: Annotated[
        float | None,
        typer.Option(
            "--floss-weight",
            help="Weight of sum lambda_i^2 [default: 1]; 0 records the exponents only.",
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Step budget.")] = 3000,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 50,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the model and the data.", callback=checked_seed)
    ] = 0,
    device: DeviceOption = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary.")] = False,
) -> None:
    """Train a model on a long-memory task, with or without each remedy."""
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.train import train

    _finite(lr=lr, regularizer=regularizer)
    for flag, given, base in (("--shuffle", shuffle, "mnist1d"), ("--permute", permute, "digits")):
        if given:  # the variant is a task of its own (mnist1d_shuffled, digits_permuted)
            if task != base:
                raise InvalidInputError(f"{flag} applies to --task {base}, not {task}")
            task = f"{base}_{'shuffled' if flag == '--shuffle' else 'permuted'}"
    if target_accuracy is not None:
        _finite(target_accuracy=target_accuracy)
    if forget_bias is not None:
        _finite(forget_bias=forget_bias)
    for name, value in (("r_min", r_min), ("r_max", r_max), ("floss_weight", floss_weight),
                        ("delta", delta)):  # fmt: skip
        if value is not None:
            _finite(**{name: value})
    config = TrainConfig(
        task=task,
        seq_len=seq_len,
        cell=cell,
        hidden=hidden,
        init=init,
        orthogonal_constraint=orthogonal_constraint,
        forget_bias=forget_bias,
        clip=clip,
        regularizer=regularizer,
        steps=steps,
        batch=batch,
        lr=lr,
        seed=seed,
        target_accuracy=target_accuracy,
        layers=layers,
        r_min=r_min,
        r_max=r_max,
        readout=readout,
        floss=floss,
        floss_before=floss_before,
        floss_every=floss_every,
        floss_window=floss_window,
        floss_weight=floss_weight,
        delta=delta,
    )
    from rnngrad.limits import check_folder

    out = check_folder(out_name)
    task_info = config.validate()
    from rnngrad.devices import resolve_device

    resolve_device(device)  # an absent device is refused before any work
    _writable(out)
    from rnngrad.atomic import FolderLock

    FolderLock.check(out, "the run")
    if as_json:
        result = train(config, out, device=device, progress=False)
        from rnngrad.jsonout import dumps

        _note_set_aside(result.checkpoint_set_aside)
        emit_json(dumps(result.summary()))
        return
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    with stderr_progress(
        TextColumn("[bold]train[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps, loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    ) as bar:
        handle = bar.add_task("train", total=config.steps, loss="…")

        def advance(step: int, total: int, loss: float) -> None:
            bar.update(handle, completed=step, loss=f"{loss:.4g}")

        result = train(config, out, progress=advance, device=device)
    _note_set_aside(result.checkpoint_set_aside)
    summary = result.summary()
    state = "[bold green]solved[/]" if result.solved else "[bold red]not solved[/]"
    console = Console()
    console.print(
        f"{config.task} T={task_info.seq_len}, {config.cell}, init {config.init}, "
        f"clip {config.clip}: {state}"
        + (f" at step {result.solved_at}" if result.solved_at else f" in {result.steps} steps")
    )
    console.print(
        f"held-out loss {summary['final_loss']} (baseline {result.baseline_loss:.4g}), "
        f"skipped steps {result.skipped_steps}, clipped steps {result.clipped_steps}, "
        f"{result.wall_s:.1f} s"
    )
    console.print(f"results in {out}")


@app.command()
def sweep(
    grid: Annotated[
        Path | None, typer.Argument(help="The TOML file of the grid (not needed with --summary).")
    ] = None,
    out_name: Annotated[str | None, typer.Option("--out", help="Folder of the sweep.")] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="A Dask scheduler address.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Parallel workers (a Dask LocalCluster of N workers)."),
    ] = None,
    connect_timeout: Annotated[
        float,
        typer.Option("--connect-timeout", help="Seconds to wait for --scheduler to answer."),
    ] = 10.0,
    device: Annotated[
        str,
        typer.Option("--device", help="cpu, cuda or auto (each worker's own GPU when it has one)."),
    ] = "cpu",
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Summarise the sweep in this folder.")
    ] = None,
    threads_per_worker: Annotated[
        int,
        typer.Option(
            "--threads-per-worker",
            help="torch threads in each worker (default 1: workers share the cores).",
        ),
    ] = 1,
) -> None:
    """Run a grid of training runs in parallel, resumably; or summarise one."""
    from rnngrad.lab.grid import load_sweep
    from rnngrad.lab.sweep import run_sweep, sweep_summary

    if summary is not None:
        rows = sweep_summary(summary)
        console = Console()
        table = Table(title=f"sweep {summary}: which configurations solved it")
        for header in (
            "task",
            "T",
            "cell",
            "init",
            "clip",
            "solved",
            "median steps",
            "median loss",
        ):
            table.add_column(header, justify="right" if header in ("T", "solved") else "left")
        with_accuracy = any(row["median_final_accuracy"] is not None for row in rows)
        if with_accuracy:  # data sets: their test accuracy
            table.add_column("median accuracy")
        for row in rows:
            cells = [
                str(row["task"]),
                str(row["seq_len"]),
                str(row["cell"])
                + (f" x{row['layers']}" if row.get("layers") else "")
                + (" +orth" if row.get("orthogonal_constraint") else "")
                + (f" ({row['readout']})" if row.get("readout") else "")
                + (f" +reg {row['regularizer']:g}" if row.get("regularizer") else "")
                + (f" +floss {row['floss']}" if row.get("floss") else ""),
                str(row["init"]),
                str(row["clip"]),
                f"{row['solved']}/{row['runs']}",
                "—" if row["median_steps_to_solve"] is None else str(row["median_steps_to_solve"]),
                "—" if row["median_final_loss"] is None else f"{row['median_final_loss']:.4g}",
            ]
            if with_accuracy:
                accuracy = row["median_final_accuracy"]
                cells.append("—" if accuracy is None else f"{accuracy:.1%}")
            table.add_row(*cells)
        console.print(table)
        return
    if grid is None or out_name is None:
        raise InvalidInputError("give GRID.toml and --out DIR (or --summary DIR)")
    from rnngrad.limits import check_folder

    out = check_folder(out_name)
    if workers is not None and workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {workers}")
    if threads_per_worker < 1:
        raise InvalidInputError(f"--threads-per-worker must be >= 1, got {threads_per_worker}")
    parsed = load_sweep(grid)
    if device != "auto":  # auto is resolved on each worker
        from rnngrad.devices import resolve_device

        resolve_device(device)
    _writable(out)
    from rnngrad.atomic import FolderLock

    FolderLock.check(out, "the sweep")
    from rnngrad.lab.grid import new_cells

    changed = new_cells(parsed, out)
    if changed:
        Console(stderr=True).print(f"the grid changed: {changed} new cells will run")
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    with stderr_progress(
        TextColumn("[bold]sweep[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("runs")
    ) as bar:  # fmt: skip
        handle = bar.add_task("sweep", total=len(parsed.configs))

        def finished(done: int, total: int, summary: dict[str, Any] | None) -> None:
            bar.update(handle, completed=done)

        results = run_sweep(
            parsed,
            out,
            scheduler=scheduler,
            workers=workers,
            use_dask=scheduler is None and workers is not None,
            on_finish=finished,
            connect_timeout=connect_timeout,
            device=device,
            progress=False,  # the bar above
            threads_per_worker=threads_per_worker,
        )
    solved = sum(1 for r in results if r["solved"])
    Console().print(
        f"{len(results)}/{len(parsed.configs)} runs finished, {solved} solved; "
        f"results in {out / 'results.parquet'} and {out / 'results.csv'}"
    )
