"""Standard output as the command line keeps it.

- With ``--json`` it carries exactly one JSON object: while the command runs, stdout
  (the Python object and, where it is the process's own, file descriptor 1) goes to
  stderr, so that whatever the user's model prints (in ``forward``, at import, from a
  thread, with ``os.write(1, ...)``) lands there; :func:`emit_json` writes the object to
  the real stdout at the end.
- A stdout that fails (a full disk, ``> /dev/full``) or is closed (``>&-``, or by the
  user's code) is said in one line (:class:`OutputError`, exit 2); a reader that has
  gone (``| head``) stays the broken pipe the entry point handles quietly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from rnngrad.errors import RnngradError

__all__ = [
    "OutputError",
    "TimeLimitError",
    "emit_json",
    "guarded_stdout",
    "start_time_limit",
    "stop_time_limit",
]


class ReaderGone(Exception):
    """Stdout's reader has gone (``| head``): the command stops quietly. Not an
    ``OSError``, so that the command-line parser's own broken-pipe handling (exit 1)
    does not take it."""


class OutputError(RnngradError, OSError):
    """Standard output cannot be written (full, failing or closed)."""


def _output_error(error: BaseException) -> OutputError:
    if isinstance(error, ValueError):  # "I/O operation on closed file"
        return OutputError("standard output was closed, so the result cannot be written")
    reason = getattr(error, "strerror", None) or str(error)
    return OutputError(f"cannot write to standard output: {reason}")


class _Guarded:
    """A text stream whose failures (other than a broken pipe) are :class:`OutputError`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise ReaderGone from None
        except (OSError, ValueError) as error:
            raise _output_error(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise ReaderGone from None
        except (OSError, ValueError) as error:
            raise _output_error(error) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class TimeLimitError(RnngradError):
    """The command ran past ``--time-limit``."""


def start_time_limit(seconds: float) -> None:
    """Raise :class:`TimeLimitError` in the main thread after ``seconds`` of wall time
    (Python code is interrupted between its steps; one long native operation first
    finishes).

    Raises:
        InvalidInputError: ``seconds`` is not a positive finite number.
    """
    import math
    import signal

    from rnngrad.errors import InvalidInputError

    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"--time-limit must be a positive number of seconds, got {seconds}")

    def expired(signum: int, frame: Any) -> None:
        raise TimeLimitError(f"the command ran past its time limit of {seconds:g} s (--time-limit)")

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def stop_time_limit() -> None:
    """Cancel a running time limit (nothing when none runs)."""
    import signal

    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)


_json_target: TextIO | None = None


def emit_json(text: str) -> None:
    """Write one JSON object (a line) to the real standard output."""
    stream: Any = _json_target if _json_target is not None else sys.stdout
    guarded = stream if isinstance(stream, _Guarded) else _Guarded(stream)
    guarded.write(text + "\n")
    guarded.flush()


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


@contextlib.contextmanager
def guarded_stdout(json_mode: bool) -> Iterator[None]:
    """Stdout for one command: guarded, and for ``--json`` sent to stderr meanwhile.

    Raises:
        OutputError: stdout is closed before the command starts.
    """
    global _json_target
    real = sys.stdout
    if real is None:
        raise OutputError("standard output is closed, so the result cannot be written")
    if not json_mode:
        sys.stdout = _Guarded(real)
        try:
            yield
        finally:
            sys.stdout = real
        return
    saved_fd = None
    substitute: Any
    if _fileno(real) == 1 and _fileno(sys.stderr) == 2:
        real.flush()
        saved_fd = os.dup(1)
        os.dup2(2, 1)
        substitute = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
        target: Any = os.fdopen(os.dup(saved_fd), "w", encoding="utf-8")
    else:  # an embedding host's stdout (a test's capture): the Python objects only
        substitute, target = sys.stderr, real
    sys.stdout = _Guarded(substitute)
    _json_target = _Guarded(target)  # type: ignore[assignment]
    try:
        yield
    finally:
        _json_target = None
        sys.stdout = real
        if saved_fd is not None:
            for stream in (substitute, target):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
