"""What rnngrad accepts and how much it takes on, checked once at the boundary.

The command line and the Python API share these checks, so that a bad value
gets the same typed error (one line on the command line, exit status 2)
wherever it enters:

- seeds are whole numbers in ``0 .. 2**63 - 1`` (numpy refuses negative seeds,
  torch seeds beyond 64 bits);
- counts (steps, sizes, batches) are whole numbers in their range;
- floats are finite and representable in the dtype they will be used in;
- work whose memory can be estimated before it starts is refused when the
  estimate exceeds the *memory budget*: half the memory available when rnngrad
  starts, or what ``RNNGRAD_MAX_MEMORY`` (``8G``, ``500M``, bytes) or
  ``rnngrad --max-memory SIZE`` sets.

The caps on open-ended work (grid cells, powers searched for transient growth,
Lyapunov steps) are constants here, stated in the README.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from rnngrad.errors import InvalidInputError, quoted

__all__ = [
    "MAX_GRID_CELLS",
    "MAX_LYAPUNOV_STEPS",
    "MAX_SEED",
    "MAX_TRAIN_STEPS",
    "MAX_TRANSIENT_STEPS",
    "ResourceError",
    "check_folder",
    "check_memory",
    "check_representable",
    "check_seed",
    "check_whole",
    "memory_budget",
    "parse_size",
    "set_memory_budget",
]

MAX_SEED = 2**63 - 1
MAX_MEMORY_SIZE = 2**63
MAX_GRID_CELLS = 10_000
MAX_TRANSIENT_STEPS = 100_000
MAX_LYAPUNOV_STEPS = 10_000_000
MAX_TRAIN_STEPS = 100_000_000
# Memory per step of the scalar chain rule: its arrays, and their JSON form.
SCALAR_BYTES_PER_STEP = 200
SCALAR_JSON_BYTES_PER_STEP = 800
# Memory per cell (a, T) of the scalar phase diagram: its float arrays and labels.
PHASE_BYTES_PER_CELL = 64

_budget: int | None = None


class ResourceError(InvalidInputError):
    """The work would need more memory than the budget allows, or exceeds a cap."""


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an int in ``0 .. 2**63 - 1``.

    Raises:
        InvalidInputError: not a whole number, or out of range.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInputError(f"{name} must be a whole number, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"{name} must be in 0..2**63-1, got {seed}")
    return seed


def check_folder(out: Any, name: str = "--out") -> Path:
    """An output folder as a path. An empty name is refused: ``Path("")`` is the working
    directory, where a run's files would land by accident.

    Raises:
        InvalidInputError: ``out`` is empty, or neither a string nor a path.
    """
    if not isinstance(out, (str, os.PathLike)):
        raise InvalidInputError(f"{name} must be a folder's path, got {type(out).__name__}")
    text = os.fspath(out)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(
            f"{name} is empty: give a folder (an empty name would write into the working directory)"
        )
    return Path(text)


def check_whole(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``minimum .. maximum``.

    Raises:
        InvalidInputError: not a whole number, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f"..{maximum:,}".replace(",", "_")
        bound = f"in {minimum}{upper}" if maximum is not None else f">= {minimum}"
        raise InvalidInputError(f"{name} must be {bound}, got {value}")
    return value


def check_representable(value: float, name: str, dtype: Any = None) -> float:
    """``value`` finite, and within the range of ``dtype`` (a torch dtype) when given.

    Raises:
        InvalidInputError: NaN, infinite, or beyond the dtype's largest number.
    """
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    if dtype is not None:
        import torch

        largest = float(torch.finfo(dtype).max)
        if abs(number) > largest:
            kind = str(dtype).removeprefix("torch.")
            raise InvalidInputError(
                f"{name} = {number:g} does not fit in {kind} (largest {largest:.3g})"
            )
    return number


def parse_size(text: str) -> int:
    """``"8G"``, ``"500M"``, ``"64k"`` or a number of bytes, as bytes.

    Raises:
        InvalidInputError: anything else.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[iI]?[bB]?\s*", text)
    if match is None:
        raise InvalidInputError(
            f"a memory size such as 8G or 500M is expected, got {quoted(repr(text))}"
        )
    number = float(match.group(1))
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[match.group(2).lower()]
    if not math.isfinite(number * scale) or number * scale > MAX_MEMORY_SIZE:
        raise InvalidInputError(f"the memory size must be at most 2**63 bytes, got {quoted(text)}")
    size = int(number * scale)
    if size < 1:
        raise InvalidInputError(f"the memory size must be positive, got {text!r}")
    return size


def _available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def memory_budget() -> int:
    """The memory budget in bytes (see the module docstring)."""
    if _budget is not None:
        return _budget
    configured = os.environ.get("RNNGRAD_MAX_MEMORY")
    if configured:
        return parse_size(configured)
    return _available() // 2


def set_memory_budget(size: int | str | None) -> None:
    """Set the budget for this process (``None``: back to the default)."""
    global _budget
    _budget = parse_size(size) if isinstance(size, str) else size


def _human(count: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count / 1e3:.3g} kB"


def check_memory(needed: float, what: str) -> None:
    """Refuse work whose memory estimate ``needed`` (bytes) exceeds the budget.

    Raises:
        ResourceError: naming ``what``, the estimate, the budget and how to change it.
    """
    budget = memory_budget()
    if needed > budget:
        raise ResourceError(
            f"{what} needs about {_human(needed)} of memory, more than the budget of "
            f"{_human(budget)} (half the available memory unless set); use less, or raise "
            "it with rnngrad --max-memory SIZE or RNNGRAD_MAX_MEMORY"
        )
