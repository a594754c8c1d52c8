"""The shared part of the command line: the app, styles and input checks."""

from __future__ import annotations

import math
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from rnngrad import __version__
from rnngrad.errors import InvalidInputError
from rnngrad.logspace import format_signed_log10
from rnngrad.theory.activations import activation_names

# --device of every command that runs a model (sweep's workers have their own wording).
DeviceOption = Annotated[
    str, typer.Option("--device", help="cpu, cuda, cuda:N or auto (cuda when there is one).")
]

app = typer.Typer(
    name="rnngrad",
    help="Measure, explain and fix vanishing and exploding gradients in recurrent networks.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

if TYPE_CHECKING:
    from rich.progress import Progress


def stderr_progress(*columns: Any) -> Progress:
    """A transient rich progress bar on stderr, drawn only where stderr is a terminal:
    in a pipe or a log file it draws nothing and writes nothing (rich would otherwise
    end a bar it never drew with an empty line)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


_VERDICT_STYLE = {"vanishing": "bold blue", "exploding": "bold red", "neither": "bold green"}
_SUMMARY_ROWS = 8  # rows shown at each end of a long table


class ExampleName(str, Enum):
    random = "random"
    orthogonal = "orthogonal"
    nonnormal = "nonnormal"


_LONGEST_LINE = 1000


def checked_seed(value: int) -> int:
    """``--seed`` of every command: a whole number numpy and torch both take."""
    from rnngrad.limits import check_seed

    return check_seed(value, "--seed")


def _fail(message: str) -> NoReturn:
    """One line on stderr, however long the message (cut at 1000 characters), and exit
    status 2."""
    line = " ".join(str(message).split())
    if len(line) > _LONGEST_LINE:
        line = f"{line[:_LONGEST_LINE]}... ({len(line)} characters)"
    print(f"rnngrad: error: {line}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _activation(name: str) -> str:
    if name not in activation_names():
        _fail(f"unknown activation {name!r}; expected one of: {', '.join(activation_names())}")
    return name


def _finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise InvalidInputError(f"--{name.replace('_', '-')} must be finite, got {value}")


def _fmt(sign: float, log10_abs: float) -> str:
    return format_signed_log10(sign, log10_abs)


def _rows_to_show(steps: int) -> list[int | None]:
    """Indices to print; ``None`` marks the elided middle of a long table."""
    if steps <= 2 * _SUMMARY_ROWS + 4:
        return list(range(steps))
    return [*range(_SUMMARY_ROWS), None, *range(steps - _SUMMARY_ROWS, steps)]


@app.callback(invoke_without_command=True)
def _main_options(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)
    ] = False,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            help="Memory budget, e.g. 8G: work estimated to need more is refused before it "
            "starts (default: half the available memory, or RNNGRAD_MAX_MEMORY).",
        ),
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            help="Stop the command after SECONDS (a model whose forward never returns, a "
            "run that takes too long): one line and exit 2.",
        ),
    ] = None,
) -> None:
    if version:
        print(f"rnngrad {__version__}")
        raise typer.Exit()
    if time_limit is not None:
        from rnngrad.cli._output import start_time_limit

        start_time_limit(time_limit)
    if max_memory is not None:
        from rnngrad.limits import parse_size, set_memory_budget

        set_memory_budget(parse_size(max_memory))


class DtypeName(str, Enum):
    float32 = "float32"
    float64 = "float64"


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".rnngrad-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise InvalidInputError(
            f"{folder}: cannot be written ({error.strerror or error})"
        ) from None
