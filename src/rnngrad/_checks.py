"""Small input checks shared by the core modules."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from rnngrad.errors import NonFiniteInputError


def require_finite(values: NDArray[np.floating] | float, name: str) -> None:
    """Raise :class:`NonFiniteInputError` naming ``name`` if NaN or inf occurs."""
    if isinstance(values, float | int):
        if not math.isfinite(values):
            raise NonFiniteInputError(f"{name} must be finite, got {values!r}")
        return
    array = np.asarray(values)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        where = tuple(int(i) for i in bad)
        index = where if len(where) > 1 else where[0]
        raise NonFiniteInputError(f"{name} must be finite, got {array[where]!r} at index {index}")


def check_delta(delta: object) -> float:
    """A rate network's ``delta = dt / tau`` in ``(0, 1]``, as a float.

    Raises:
        InvalidInputError: anything else.
    """
    from rnngrad.errors import InvalidInputError

    if isinstance(delta, bool) or not isinstance(delta, float | int):
        raise InvalidInputError(f"delta must be a number in (0, 1], got {delta!r}")
    if not (math.isfinite(delta) and 0 < delta <= 1):
        raise InvalidInputError(f"delta must be in (0, 1] (dt / tau), got {delta!r}")
    return float(delta)
