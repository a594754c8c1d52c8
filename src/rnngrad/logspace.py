r"""Numbers carried as a sign and a base-10 logarithm.

A gradient through ``T`` steps is a product of ``T`` factors; for
``T = 100_000`` and factors near 0.5 it is about ``10**-30103``, far below the
smallest float64 (about ``10**-308``). rnngrad therefore sums logarithms of
factors and keeps ``(sign, log10|value|)``. :func:`to_float` converts back only
where the value fits a float64, and :func:`format_signed_log10` prints any such
number in scientific notation (``-3.21e-30103``).

``log10|value| = -inf`` stands for an exact zero (for example a relu that is
off), never for an underflow: underflows stay finite in log space.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LOG10_FLOAT_MAX",
    "LOG10_FLOAT_MIN",
    "finite_or_none",
    "format_signed_log10",
    "to_float",
]

#: log10 of the largest finite float64.
LOG10_FLOAT_MAX = math.log10(np.finfo(np.float64).max)
#: log10 of the smallest normal float64; below it precision is lost.
LOG10_FLOAT_MIN = math.log10(np.finfo(np.float64).tiny)


def to_float(sign: NDArray[np.float64], log10_abs: NDArray[np.float64]) -> NDArray[np.float64]:
    """``sign * 10**log10_abs`` where it is a normal float64, NaN elsewhere.

    Exact zeros (``log10_abs == -inf``) become ``0.0``. The NaN marks "not
    representable" and is turned into ``null`` by the JSON writer; callers that
    show numbers use the log field there.
    """
    sign = np.asarray(sign, dtype=np.float64)
    log10_abs = np.asarray(log10_abs, dtype=np.float64)
    fits = (log10_abs >= LOG10_FLOAT_MIN) & (log10_abs <= LOG10_FLOAT_MAX)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        value = np.where(fits, sign * np.power(10.0, np.where(fits, log10_abs, 0.0)), np.nan)
    return np.where(np.isneginf(log10_abs), 0.0 * sign, value)


def format_signed_log10(sign: float, log10_abs: float, digits: int = 4) -> str:
    """Scientific notation for ``sign * 10**log10_abs``, with any exponent.

    >>> format_signed_log10(-1.0, -30103.2)
    '-6.310e-30104'
    """
    if math.isnan(log10_abs):
        return "undefined"
    if log10_abs == -math.inf or sign == 0:
        return "0"
    if log10_abs == math.inf:
        return "-inf" if sign < 0 else "inf"
    exponent = math.floor(log10_abs)
    mantissa = 10.0 ** (log10_abs - exponent)
    if round(mantissa, digits - 1) >= 10.0:
        mantissa /= 10.0
        exponent += 1
    text = f"{mantissa:.{digits - 1}f}e{exponent:+03d}"
    return ("-" if sign < 0 else "") + text


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or ``None`` if it is NaN or infinite (how output says "no
    number": JSON, tables and the page never show NaN or infinity as if it were one)."""
    number = float(value)
    return number if math.isfinite(number) else None
