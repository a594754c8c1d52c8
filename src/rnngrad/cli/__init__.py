"""The ``rnngrad`` command line: parse, call the core, print.

Every command prints a rich table and a verdict, or with ``--json`` one JSON
object on stdout and nothing else there. Bad input (an option that does not
parse, a value out of range, NaN or inf, a missing or unsafe file) gives one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from rnngrad.cli import analysis, networks, remedies, report  # noqa: F401 - register commands
from rnngrad.cli._common import _fail, app
from rnngrad.errors import RnngradError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line on stderr and exit 2 for bad input."""
    command = typer.main.get_command(app)
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        argv = ["--help"]
    try:
        status = command.main(args=argv, prog_name="rnngrad", standalone_mode=False)
    except RnngradError as error:
        _fail(str(error))
    except BrokenPipeError:
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        print("rnngrad: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        # Typer's command-line parser (its own or click's, by version) raises usage
        # errors that carry format_message() and exit_code, and Exit/Abort.
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):
            _fail(str(error.format_message()).replace("\n", " "))
        if type(error).__name__ == "Exit" and hasattr(error, "exit_code"):
            raise SystemExit(error.exit_code) from None
        if type(error).__name__ == "Abort":
            print("rnngrad: aborted", file=sys.stderr)
            raise SystemExit(130) from None
        raise
    raise SystemExit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
