r"""A sweep file: the grid of lab runs and their fixed settings, read and checked.

A TOML file names the grid and the fixed training settings::

    [grid]
    task = ["adding"]
    seq_len = [50, 100, 200]
    cell = ["rnn", "lstm", "gru"]
    init = ["default", "orthogonal", "identity"]
    clip = ["none", "norm:1.0"]
    seed = [0, 1, 2]
    [train]
    hidden = 64
    steps = 3000

Every key is a field of :class:`rnngrad.lab.config.TrainConfig`, in ``[grid]``
as a list of values or in ``[train]`` as one value. :func:`load_sweep` checks
every cell's configuration before anything runs, and a mistake is reported with
the file's line; :mod:`rnngrad.lab.sweep` runs the cells.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rnngrad.errors import InvalidInputError
from rnngrad.lab.config import TrainConfig

__all__ = ["Sweep", "load_sweep", "new_cells"]

_FIELDS = {f.name: f for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Sweep:
    """A parsed grid: its keys in file order and the configurations of all cells."""

    grid_keys: tuple[str, ...]
    configs: tuple[TrainConfig, ...]
    path: str


def _line_of(text: str, key: str, section: str) -> int | None:
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([A-Za-z0-9_.-]+)\s*\]", stripped)
        if header:
            current = header.group(1)
        elif current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _where(path: str, text: str, key: str, section: str) -> str:
    line = _line_of(text, key, section)
    return f"{path}, line {line}" if line else path


def _coerce(name: str, value: Any, where: str) -> Any:
    expected = _FIELDS[name].type
    expected = (
        expected if isinstance(expected, str) else getattr(expected, "__name__", str(expected))
    )
    if "bool" in expected:
        if not isinstance(value, bool):
            raise InvalidInputError(f"{where}: {name} must be true or false, got {value!r}")
        return value
    if expected.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"{where}: {name} must be a whole number, got {value!r}")
        return value
    if "float" in expected:
        if value is None and "None" in expected:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"{where}: {name} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: {name} must be a string, got {value!r}")
    return value


def load_sweep(path: str | Path) -> Sweep:
    """Parse and check a sweep file.

    Raises:
        InvalidInputError: unreadable or bad TOML, an unknown section or key, a
            value of the wrong type or out of range, an empty list, or a grid
            that lacks task, seq_len or cell: the message names the line.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    from rnngrad.io.files import regular_file

    file = regular_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(f"{file}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise InvalidInputError(
            f"{file}: not UTF-8 text (byte {error.start}); TOML files are UTF-8"
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(f"{file}: not valid TOML: {error}") from None
    unknown_sections = sorted(set(document) - {"grid", "train"})
    if unknown_sections:
        raise InvalidInputError(
            f"{file}: unknown section [{unknown_sections[0]}]; expected [grid] and [train]"
        )
    grid = document.get("grid", {})
    fixed = document.get("train", {})
    if not grid:
        raise InvalidInputError(f"{file}: the [grid] section is missing or empty")
    for section, table in (("grid", grid), ("train", fixed)):
        for key in table:
            if key not in _FIELDS:
                raise InvalidInputError(
                    f"{_where(str(file), text, key, section)}: unknown key {key!r}; expected one "
                    f"of: {', '.join(_FIELDS)}"
                )
    for key, values in grid.items():
        where = _where(str(file), text, key, "grid")
        if not isinstance(values, list):
            raise InvalidInputError(f"{where}: [grid] values must be lists, got {values!r}")
        if not values:
            raise InvalidInputError(f"{where}: {key} is an empty list: the grid would be empty")
        if key in fixed:
            raise InvalidInputError(f"{where}: {key} is both in [grid] and in [train]")
    from rnngrad.limits import MAX_GRID_CELLS

    cells = 1
    for values in grid.values():
        cells *= len(values)
    if cells > MAX_GRID_CELLS:
        raise InvalidInputError(
            f"{file}: the grid has {cells:,} cells, more than the {MAX_GRID_CELLS:,} a sweep "
            "runs; split it into several sweeps"
        )
    missing = [k for k in ("task", "cell") if k not in grid and k not in fixed]
    if missing:
        raise InvalidInputError(f"{file}: {', '.join(missing)} must be given in [grid] or [train]")
    coerced_grid = {
        key: [_coerce(key, v, _where(str(file), text, key, "grid")) for v in values]
        for key, values in grid.items()
    }
    coerced_fixed = {
        key: _coerce(key, value, _where(str(file), text, key, "train"))
        for key, value in fixed.items()
    }
    keys = tuple(coerced_grid)
    configs = []
    for combination in itertools.product(*(coerced_grid[k] for k in keys)):
        given = {**coerced_fixed, **dict(zip(keys, combination, strict=True))}
        given.setdefault("seq_len", 0)  # a data set's own length; generated tasks need one
        config = TrainConfig(**given)
        try:
            config.validate()
        except InvalidInputError as error:
            # the longest key named in the message (forget_bias before cell)
            candidates = sorted((*keys, *coerced_fixed), key=len, reverse=True)
            culprit = next((k for k in candidates if k in str(error)), None)
            section = "grid" if culprit in coerced_grid else "train"
            where = _where(str(file), text, culprit, section) if culprit else str(file)
            raise InvalidInputError(f"{where}: {error}") from None
        configs.append(config)
    return Sweep(keys, tuple(configs), str(file))


def new_cells(sweep: Sweep, out: str | Path) -> int:
    """Cells of ``sweep`` that the last sweep in ``out`` did not have (0 for a new folder)."""
    previous = Path(out) / "grid.json"
    if not previous.exists():
        return 0
    try:
        known = set(json.loads(previous.read_text()).get("cells", []))
    except (OSError, json.JSONDecodeError):
        return 0
    return sum(1 for c in sweep.configs if c.key() not in known)
