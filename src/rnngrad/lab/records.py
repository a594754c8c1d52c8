"""Tidy tables and JSON written atomically (Parquet through pyarrow, and CSV), each
through :mod:`rnngrad.atomic`: whole or absent, never a mixture, one line on a full disk."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rnngrad.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["read_table_rows", "write_json", "write_table"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_table(rows: list[dict[str, Any]], base: Path) -> None:
    """``base.parquet`` and ``base.csv`` from a list of flat dicts (NaN becomes null)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    # Every key of every row is a column (from_pylist alone would keep only the first
    # row's keys, dropping a field that older runs' summaries do not have).
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = pa.Table.from_pylist([{k: _clean(row.get(k)) for k in columns} for row in rows])
    for suffix, writer in ((".parquet", pq.write_table), (".csv", pa_csv.write_csv)):
        sink = pa.BufferOutputStream()
        writer(table, sink)
        atomic_write_bytes(base.with_suffix(suffix), sink.getvalue().to_pybytes())


def read_table_rows(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a Parquet file that has the ``required`` columns.

    Raises:
        WeightFileError: not a readable Parquet file.
        InvalidInputError: a column is missing (a table of something else).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rnngrad.errors import InvalidInputError, WeightFileError

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        detail = " ".join(str(error).split())[:200]
        raise WeightFileError(f"{path}: not a readable Parquet table ({detail})") from None
    missing = [name for name in required if name not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"{path}: not a table of rnngrad runs (no column {', '.join(missing)})"
        )
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def write_json(payload: dict[str, Any], path: Path) -> None:
    """Strict JSON (no NaN), written atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
