"""The report's flat tables (runs, arms, comparisons): their columns, types and rows.

CSV and Parquet write the same tables, so both read their columns from here: one fixed
order, one type per column, whatever the order of keys in the report JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from oriole.comparison.records import METRICS

Kind = Literal["int", "float", "bool", "str"]

#: Metrics that count things: integer columns (the others are floats).
INTEGER_METRICS = frozenset(
    {
        "footsteps",
        "actions",
        "turns",
        "input_tokens",
        "output_tokens",
        "unique_tiles",
        "wall_bumps",
        "recalls",
        "no_tool_turns",
    }
)

_RUN_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("run_id", "str"),
    ("arm", "str"),
    ("batch_id", "str"),
    ("cell", "str"),
    ("repetition", "int"),
    ("maze", "str"),
    ("maze_hash", "str"),
    ("start_x", "int"),
    ("start_y", "int"),
    ("seed", "int"),
    ("status", "str"),
    ("stop_reason", "str"),
    ("success", "bool"),
    ("goal_reached", "bool"),
    ("failed", "bool"),
)

_ARM_LEADING: tuple[tuple[str, Kind], ...] = (("arm", "str"),)
_ARM_COUNTS: tuple[tuple[str, Kind], ...] = (
    ("runs", "int"),
    ("successes", "int"),
    ("failed", "int"),
    ("success_rate", "float"),
    ("success_low", "float"),
    ("success_high", "float"),
    ("goal_reached", "int"),
    ("goal_reached_rate", "float"),
    ("goal_reached_low", "float"),
    ("goal_reached_high", "float"),
    ("cost_per_success", "float"),
)
_METRIC_STATS: tuple[tuple[str, Kind], ...] = (
    ("n", "int"),
    ("mean", "float"),
    ("median", "float"),
    ("low", "float"),
    ("high", "float"),
)

_COMPARISON_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("a", "str"),
    ("b", "str"),
    ("paired", "bool"),
    ("pairs", "int"),
    ("outcome", "str"),
    ("test", "str"),
    ("p_value", "float"),
    ("p_holm", "float"),
    ("a_rate", "float"),
    ("b_rate", "float"),
    ("difference", "float"),
    ("low", "float"),
    ("high", "float"),
    ("table_00", "int"),
    ("table_01", "int"),
    ("table_10", "int"),
    ("table_11", "int"),
    ("n_a", "int"),
    ("n_b", "int"),
    ("shift", "float"),
    ("cliffs_delta", "float"),
)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Table:
    """Columns in their fixed order and rows keyed by column name (None = undefined)."""

    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...]

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


def metric_names(report: Mapping[str, Any]) -> list[str]:
    """METRICS in contract order, then any metric a newer core added (sorted): nothing in the
    report is silently dropped from an export."""
    extra: set[str] = set()
    for arm in report.get("arms", []):
        extra.update(arm.get("metrics", {}))
    return [*METRICS, *sorted(extra - set(METRICS))]


def metric_kind(name: str) -> Kind:
    return "int" if name in INTEGER_METRICS else "float"


def cell(value: Any, kind: Kind, column: str) -> Any:
    """One value coerced to its column's type, so a JSON ``40.0`` lands in an int column as
    40 and a bool never turns into a number; None stays None."""
    if value is None:
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"column {column!r}: {value!r} is not a boolean")
        return value
    if kind == "str":
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"column {column!r}: {value!r} is not a number")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"column {column!r}: {value!r} is not a whole number")
        return int(value)
    return float(value)


def _infer_kind(values: Iterable[Any]) -> Kind:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    return "str"


def _table(columns: Sequence[Column], records: Iterable[Mapping[str, Any]]) -> Table:
    rows = tuple(
        {c.name: cell(record.get(c.name), c.kind, c.name) for c in columns} for record in records
    )
    return Table(tuple(columns), rows)


def runs_table(report: Mapping[str, Any]) -> Table:
    """``run_rows``: the fixed run fields, every metric, then any unknown field (sorted)."""
    records: list[Mapping[str, Any]] = list(report.get("run_rows", []))
    columns = [Column(name, kind) for name, kind in _RUN_FIELDS]
    columns += [Column(name, metric_kind(name)) for name in metric_names(report)]
    known = {column.name for column in columns}
    extra = sorted({key for record in records for key in record} - known)
    columns += [Column(key, _infer_kind(r.get(key) for r in records)) for key in extra]
    return _table(columns, records)


def factor_columns(report: Mapping[str, Any]) -> dict[str, str]:
    """Factor -> its column in the arms table: the factor's own name, or ``factor_<name>``
    where that would clash with a fixed column (an option called ``runs``)."""
    fixed = {name for name, _ in (*_ARM_LEADING, *_ARM_COUNTS)}
    fixed |= {f"{m}_{s}" for m in metric_names(report) for s, _ in _METRIC_STATS}
    return {name: f"factor_{name}" if name in fixed else name for name in report_factors(report)}


def report_factors(report: Mapping[str, Any]) -> list[str]:
    """The report's factors, then any factor an arm has that they do not name."""
    names = list(report.get("factors") or [])
    for arm in report.get("arms", []):
        names += [name for name in arm.get("factors", {}) if name not in names]
    return names


def arms_table(report: Mapping[str, Any]) -> Table:
    """One row per arm: its factors, counts, rates and every metric's summary flattened."""
    factors = factor_columns(report)
    metrics = metric_names(report)
    columns = [Column(name, kind) for name, kind in _ARM_LEADING]
    columns += [Column(column, "str") for column in factors.values()]
    columns += [Column(name, kind) for name, kind in _ARM_COUNTS]
    for metric in metrics:
        columns += [
            Column(f"{metric}_{stat}", "int" if stat == "n" else "float")
            for stat, _ in _METRIC_STATS
        ]
    records = []
    for arm in report.get("arms", []):
        success = arm.get("success") or {}
        goal = arm.get("goal_reached") or {}
        record: dict[str, Any] = {
            "arm": arm.get("arm"),
            "runs": arm.get("runs"),
            "successes": arm.get("successes"),
            "failed": arm.get("failed"),
            "success_rate": success.get("rate"),
            "success_low": success.get("low"),
            "success_high": success.get("high"),
            "goal_reached": goal.get("count"),
            "goal_reached_rate": goal.get("rate"),
            "goal_reached_low": goal.get("low"),
            "goal_reached_high": goal.get("high"),
            "cost_per_success": arm.get("cost_per_success"),
        }
        for name, column in factors.items():
            record[column] = (arm.get("factors") or {}).get(name)
        for metric in metrics:
            summary = (arm.get("metrics") or {}).get(metric) or {}
            for stat, _ in _METRIC_STATS:
                record[f"{metric}_{stat}"] = summary.get(stat)
        records.append(record)
    return _table(columns, records)


def comparisons_table(report: Mapping[str, Any]) -> Table:
    """One row per comparison and outcome: ``success`` first, then each metric in order."""
    columns = [Column(name, kind) for name, kind in _COMPARISON_FIELDS]
    metrics = metric_names(report)
    records: list[dict[str, Any]] = []
    for comparison in report.get("comparisons", []):
        shared = {
            "a": comparison.get("a"),
            "b": comparison.get("b"),
            "paired": comparison.get("paired"),
            "pairs": comparison.get("pairs"),
        }
        success = comparison.get("success") or {}
        table = success.get("table") or [[None, None], [None, None]]
        records.append(
            {
                **shared,
                **{k: success.get(k) for k in ("test", "p_value", "p_holm", "a_rate", "b_rate")},
                **{k: success.get(k) for k in ("difference", "low", "high")},
                "outcome": "success",
                **{f"table_{i}{j}": table[i][j] for i in range(2) for j in range(2)},
            }
        )
        found = comparison.get("metrics") or {}
        for metric in [*metrics, *sorted(set(found) - set(metrics))]:
            if metric not in found:
                continue
            test = found[metric] or {}
            keys = ("test", "p_value", "p_holm", "n_a", "n_b", "shift", "cliffs_delta")
            records.append({**shared, "outcome": metric, **{k: test.get(k) for k in keys}})
    return _table(columns, records)
