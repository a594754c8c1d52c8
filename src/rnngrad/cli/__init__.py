"""The ``rnngrad`` command line: parse, call the core, print.

Every command prints a rich table and a verdict, or with ``--json`` one JSON
object on stdout and nothing else there. Bad input (an option that does not
parse, a value out of range, NaN or inf, a missing or unsafe file) gives one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import typer

from rnngrad.cli import analysis, lyapunov, networks, remedies, report  # noqa: F401 - register commands
from rnngrad.cli._common import _fail, app
from rnngrad.errors import RnngradError

__all__ = ["app", "main"]


_SIGPIPE_STATUS = 141
_INTERRUPTED = "rnngrad: interrupted; finished work is kept and a rerun resumes"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line on stderr and exit 2 for bad input.

    Warnings raised while a command runs (by numpy, torch or rnngrad) are held
    back: after a failure only the error line is printed; after success each
    distinct warning is printed once as ``rnngrad: warning: ...``.
    """
    import warnings

    command = typer.main.get_command(app)
    console = argv is None  # the console script: this process is rnngrad's alone
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        argv = ["--help"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = _run(command, argv)
    seen: set[str] = set()
    for warning in caught:
        text = " ".join(str(warning.message).split())
        if text not in seen:
            seen.add(text)
            print(f"rnngrad: warning: {text}", file=sys.stderr)
    if console:
        _leave_despite_threads(status)
    raise SystemExit(status)


def _leave_despite_threads(status: int) -> None:
    """End the process now when the user's code left a thread that would keep it alive
    (a non-daemon thread): the command's work is done and its output written."""
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(status)


def _release_stdout() -> None:
    """Point stdout at the null device once its reader has gone, so that nothing more
    (Python's flush at exit included) fails on it; the exit status is 141 (128 + SIGPIPE),
    as a Unix tool killed by the closed pipe gives."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):  # no file descriptor behind stdout (an embedding host)
        pass


@contextlib.contextmanager
def _stopping_time_limit(stop: Any) -> Any:
    try:
        yield
    finally:
        stop()


def _run(command: Any, argv: list[str]) -> int:
    from rnngrad.cli._output import ReaderGone, guarded_stdout, stop_time_limit

    try:
        with guarded_stdout(json_mode="--json" in argv), _stopping_time_limit(stop_time_limit):
            status = command.main(args=argv, prog_name="rnngrad", standalone_mode=False)
            if "--json" not in argv:  # (the JSON object was flushed as it was written)
                sys.stdout.flush()  # a reader that has gone fails here, not at exit
    except RnngradError as error:
        _fail(str(error))
    except (BrokenPipeError, ReaderGone):  # the reader stopped early (``| head``): quietly
        _release_stdout()
        raise SystemExit(_SIGPIPE_STATUS) from None
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        # Typer's command-line parser (its own or click's, by version) raises usage
        # errors that carry format_message() and exit_code, and Exit/Abort.
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):
            _fail(str(error.format_message()))
        if type(error).__name__ == "Exit" and hasattr(error, "exit_code"):
            if error.exit_code == 130:  # typer's form of Ctrl-C
                print(_INTERRUPTED, file=sys.stderr)
            raise SystemExit(error.exit_code) from None
        if type(error).__name__ == "Abort":  # click's form of Ctrl-C (or end of input)
            print(_INTERRUPTED, file=sys.stderr)
            raise SystemExit(130) from None
        raise
    if status == 130:  # click and typer turn Ctrl-C into a return value of 130
        print(_INTERRUPTED, file=sys.stderr)
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    main()
