"""The report's tables as files: CSV for spreadsheets, Parquet for notebooks.

Both carry the columns of `reports.tables` in the same order. CSV leaves an undefined value
empty and writes booleans as ``true``/``false`` and floats in full precision (``repr``), so
a reader such as ``pyarrow.csv`` infers the same types the Parquet schema states.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from reports.tables import Kind, Table, arms_table, comparisons_table, runs_table

_ARROW_TYPES: dict[Kind, Any] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_table(table: Table, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(table.names)
        for row in table.rows:
            writer.writerow([_csv_text(row[name]) for name in table.names])
    return path


def write_csv(report: Mapping[str, Any], directory: Path) -> list[Path]:
    """``runs.csv``, ``arms.csv`` and ``comparisons.csv`` in ``directory`` (created if need
    be); returns their paths in that order."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _write_table(runs_table(report), directory / "runs.csv"),
        _write_table(arms_table(report), directory / "arms.csv"),
        _write_table(comparisons_table(report), directory / "comparisons.csv"),
    ]


def arrow_schema(table: Table) -> Any:
    """The explicit Arrow schema of a table: every column nullable, typed by its kind."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind], nullable=True) for c in table.columns])


def to_arrow(table: Table) -> Any:
    schema = arrow_schema(table)
    arrays = [
        pa.array([row[c.name] for row in table.rows], type=_ARROW_TYPES[c.kind])
        for c in table.columns
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(report: Mapping[str, Any], path: Path) -> list[Path]:
    """The runs table at ``path`` and the arms table beside it as ``<stem>.arms.parquet``;
    returns both paths (runs first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arms_path = path.with_name(f"{path.stem}.arms.parquet")
    pq.write_table(to_arrow(runs_table(report)), path)
    pq.write_table(to_arrow(arms_table(report)), arms_path)
    return [path, arms_path]
