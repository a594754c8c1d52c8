"""Typed exceptions.

Every error that rnngrad raises on purpose derives from :class:`RnngradError`.
Each also derives from the built-in exception that fits (``ValueError`` for bad
values, ``OSError`` for files), so callers that already catch those keep
working. Messages say what was received and what was expected; the CLI prints
them as one line on stderr and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "InvalidInputError",
    "MissingExtraError",
    "ModelError",
    "NonFiniteInputError",
    "NumericalError",
    "RnngradError",
    "ShapeError",
    "UnknownActivationError",
    "UnsafeFileError",
    "UnsupportedModuleError",
    "WeightFileError",
    "calling_user_code",
    "described",
    "quoted",
]


class RnngradError(Exception):
    """Base class of every error rnngrad raises on purpose."""


class InvalidInputError(RnngradError, ValueError):
    """A value that is out of its allowed range or cannot be parsed."""


class NonFiniteInputError(InvalidInputError):
    """An input that holds NaN or an infinity."""


class UnknownActivationError(InvalidInputError, KeyError):
    """An activation name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it plain
        return str(self.args[0]) if self.args else ""


class ShapeError(InvalidInputError):
    """An array whose shape does not fit (for example a non-square W_hh)."""


class WeightFileError(RnngradError, OSError):
    """A weight file that is missing, unreadable or holds no usable tensor."""


class UnsafeFileError(WeightFileError):
    """A file that could only be read by unpickling arbitrary objects.

    rnngrad never unpickles: ``.pt`` files are read with ``weights_only=True``
    and ``.npy`` files with ``allow_pickle=False``.
    """


class NumericalError(RnngradError, ArithmeticError):
    """A computation that left the range of floating point (NaN appeared)."""


class MissingExtraError(RnngradError, ImportError):
    """An optional dependency that is not installed; the message names the
    ``pip install 'rnngrad[...]'`` that brings it."""


class ModelError(InvalidInputError):
    """The user's model (or loss) raised an error of its own while rnngrad called it;
    the message quotes it, and the original is chained as ``__cause__``."""


class ControlFlow(Exception):
    """Raised by rnngrad's own hooks inside a user's forward to change course; passes
    through :func:`calling_user_code` untouched."""


#: The most characters of a user's text (an argument, an exception's message) quoted in
#: an error line.
QUOTED_CHARACTERS = 300


def quoted(text: str) -> str:
    """``text`` for an error line: its first line, at most :data:`QUOTED_CHARACTERS`."""
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    if len(first) <= QUOTED_CHARACTERS and first == stripped:
        return first
    shown = first[:QUOTED_CHARACTERS]
    return f"{shown}... ({len(text)} characters)"


def described(error: BaseException) -> str:
    """An exception from the user's code in a few words: its type and quoted message;
    an exit names its code (``SystemExit(0)`` is no success of rnngrad's)."""
    if isinstance(error, SystemExit):
        return f"SystemExit (sys.exit({error.code!r}))"
    text = str(error).strip()
    return f"{type(error).__name__}: {quoted(text) if text else '(no message)'}"


@contextmanager
def calling_user_code(what: str) -> Iterator[None]:
    """Turn whatever the user's code raises into a :class:`ModelError` quoting it: any
    exception, ``sys.exit`` and other ``BaseException`` subclasses too (a Ctrl-C, a
    ``KeyboardInterrupt``, passes through as the user's interrupt)."""
    try:
        yield
    except (RnngradError, ControlFlow, KeyboardInterrupt):
        raise
    except BaseException as error:
        raise ModelError(f"{what} raised {described(error)}") from error


class UnsupportedModuleError(InvalidInputError):
    """A module rnngrad cannot profile (not nn.RNN, nn.LSTM or nn.GRU, nor a layer it
    reads through one of its protocols)."""
