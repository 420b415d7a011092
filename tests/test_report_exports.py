"""The report's CSV and Parquet exports: read back with pyarrow, every run, arm and
comparison is there with its values (nulls included) and each column has its proper type."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from oriole.comparison.records import METRICS
from reports.export import write_csv, write_parquet
from tests.report_fixture_support import HOSTILE_PROMPT, make_report

RUN_FIELDS = [
    "run_id",
    "arm",
    "batch_id",
    "cell",
    "repetition",
    "maze",
    "maze_hash",
    "start_x",
    "start_y",
    "seed",
    "status",
    "stop_reason",
    "success",
    "goal_reached",
    "failed",
]
INT_FIELDS = {"repetition", "start_x", "start_y", "seed"}
BOOL_FIELDS = {"success", "goal_reached", "failed"}
FLOAT_METRICS = {
    "cost_usd",
    "duration_s",
    "inference_s",
    "path_efficiency",
    "revisit_ratio",
    "seen_share",
}


def expected_run_type(name: str) -> pa.DataType:
    if name in BOOL_FIELDS:
        return pa.bool_()
    if name in FLOAT_METRICS:
        return pa.float64()
    if name in INT_FIELDS or name in METRICS:
        return pa.int64()
    return pa.string()


def read_csv(path: Path) -> pa.Table:
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return make_report(arms=3, mazes=4, runs=3, seed=11)


def test_runs_csv_holds_every_run_with_its_values_and_types(
    report: dict[str, Any], tmp_path: Path
) -> None:
    paths = write_csv(report, tmp_path / "out")
    assert [p.name for p in paths] == ["runs.csv", "arms.csv", "comparisons.csv"]
    table = read_csv(paths[0])
    assert table.column_names == [*RUN_FIELDS, *METRICS]
    for name in table.column_names:
        assert table.schema.field(name).type == expected_run_type(name), name
    rows = table.to_pylist()
    assert [row["run_id"] for row in rows] == [row["run_id"] for row in report["run_rows"]]
    for written, original in zip(rows, report["run_rows"], strict=True):
        assert written == original
    # The fixture has nulls where the run has no value: they stay nulls, not zeros.
    assert any(row["cost_usd"] is None for row in rows)
    assert any(row["batch_id"] is None for row in rows)
    assert any(row["success"] for row in rows) and not all(row["success"] for row in rows)


def test_arms_csv_flattens_each_arm(report: dict[str, Any], tmp_path: Path) -> None:
    table = read_csv(write_csv(report, tmp_path)[1])
    stats = [f"{m}_{s}" for m in METRICS for s in ("n", "mean", "median", "low", "high")]
    assert table.column_names == [
        "arm",
        "agent",
        "prompt",
        "runs",
        "successes",
        "failed",
        "success_rate",
        "success_low",
        "success_high",
        "goal_reached",
        "goal_reached_rate",
        "goal_reached_low",
        "goal_reached_high",
        "cost_per_success",
        *stats,
    ]
    assert table.schema.field("runs").type == pa.int64()
    assert table.schema.field("success_rate").type == pa.float64()
    assert table.schema.field("footsteps_n").type == pa.int64()
    assert table.schema.field("footsteps_mean").type == pa.float64()
    rows = table.to_pylist()
    assert [row["arm"] for row in rows] == [arm["arm"] for arm in report["arms"]]
    for row, arm in zip(rows, report["arms"], strict=True):
        assert row["agent"] == arm["factors"]["agent"]
        assert row["prompt"] == arm["factors"]["prompt"]
        assert (row["runs"], row["successes"], row["failed"]) == (
            arm["runs"],
            arm["successes"],
            arm["failed"],
        )
        assert row["success_low"] == arm["success"]["low"]
        assert row["goal_reached"] == arm["goal_reached"]["count"]
        assert row["cost_per_success"] == arm["cost_per_success"]
        for metric in METRICS:
            for stat in ("n", "mean", "median", "low", "high"):
                assert row[f"{metric}_{stat}"] == arm["metrics"][metric][stat], (metric, stat)
    assert rows[1]["prompt"] == HOSTILE_PROMPT  # quotes and brackets survive the CSV
    assert rows[-1]["cost_per_success"] is None  # the arm that never succeeds
    assert rows[0]["cost_usd_mean"] is None  # the builtin arm has no cost


def test_comparisons_csv_has_a_row_per_comparison_and_outcome(
    report: dict[str, Any], tmp_path: Path
) -> None:
    table = read_csv(write_csv(report, tmp_path)[2])
    rows = table.to_pylist()
    comparisons = report["comparisons"]
    assert len(rows) == len(comparisons) * (1 + len(METRICS))
    assert [row["outcome"] for row in rows[: 1 + len(METRICS)]] == ["success", *METRICS]
    assert table.schema.field("paired").type == pa.bool_()
    assert table.schema.field("table_00").type == pa.int64()
    assert table.schema.field("p_holm").type == pa.float64()
    for index, comparison in enumerate(comparisons):
        block = rows[index * (1 + len(METRICS)) : (index + 1) * (1 + len(METRICS))]
        success = comparison["success"]
        head = block[0]
        assert (head["a"], head["b"], head["paired"], head["pairs"]) == (
            comparison["a"],
            comparison["b"],
            True,
            comparison["pairs"],
        )
        assert head["difference"] == success["difference"]
        assert head["p_holm"] == success["p_holm"]
        assert [[head["table_00"], head["table_01"]], [head["table_10"], head["table_11"]]] == (
            success["table"]
        )
        assert head["shift"] is None and head["n_a"] is None
        for row in block[1:]:
            test = comparison["metrics"][row["outcome"]]
            for key in ("test", "n_a", "n_b", "p_value", "p_holm", "shift", "cliffs_delta"):
                assert row[key] == test[key], (row["outcome"], key)
            assert row["difference"] is None and row["table_00"] is None
    # The builtin arm has no tokens: its comparisons carry null p-values for them.
    assert any(row["outcome"] == "input_tokens" and row["p_value"] is None for row in rows)


def test_parquet_writes_runs_and_arms_with_explicit_types(
    report: dict[str, Any], tmp_path: Path
) -> None:
    paths = write_parquet(report, tmp_path / "export" / "runs.parquet")
    assert paths == [
        tmp_path / "export" / "runs.parquet",
        tmp_path / "export" / "runs.arms.parquet",
    ]
    runs = pq.read_table(paths[0])
    assert runs.column_names == [*RUN_FIELDS, *METRICS]
    assert runs.schema == pa.schema([(name, expected_run_type(name)) for name in runs.column_names])
    assert runs.to_pylist() == report["run_rows"]
    arms = pq.read_table(paths[1])
    assert arms.num_rows == len(report["arms"])
    assert arms.column("arm").to_pylist() == [arm["arm"] for arm in report["arms"]]
    assert arms.schema.field("agent").type == pa.string()
    assert arms.schema.field("successes").type == pa.int64()
    assert arms.schema.field("cost_per_success").type == pa.float64()
    assert arms.column("cost_per_success").to_pylist() == [
        arm["cost_per_success"] for arm in report["arms"]
    ]
    assert arms.column("turns_median").to_pylist() == [
        arm["metrics"]["turns"]["median"] for arm in report["arms"]
    ]


def test_exports_are_deterministic(report: dict[str, Any], tmp_path: Path) -> None:
    first = write_csv(report, tmp_path / "one")
    second = write_csv(copy.deepcopy(report), tmp_path / "two")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_whole_floats_fit_int_columns_and_fractions_are_refused(tmp_path: Path) -> None:
    report = make_report(arms=2, mazes=1, runs=2, visits=False)
    report["run_rows"][0]["footsteps"] = 40.0  # a JSON writer may emit a whole number so
    runs = pq.read_table(write_parquet(report, tmp_path / "runs.parquet")[0])
    assert runs.column("footsteps").type == pa.int64()
    assert runs.column("footsteps")[0].as_py() == 40
    report["run_rows"][0]["footsteps"] = 40.5
    with pytest.raises(ValueError, match="footsteps"):
        write_csv(report, tmp_path / "bad")


def test_newer_fields_and_clashing_factors_get_columns(tmp_path: Path) -> None:
    """A field or metric a newer core adds is exported after the known ones, and a factor
    named like a fixed column gets a prefix instead of overwriting it."""
    report = make_report(arms=2, mazes=1, runs=2, visits=False)
    for row in report["run_rows"]:
        row["vision_range"] = 3
    report["factors"] = ["agent", "runs"]
    for arm in report["arms"]:
        arm["factors"]["runs"] = "many"
        arm["metrics"]["zz_new"] = {"n": 1, "mean": 2.5, "median": 2.5, "low": None, "high": None}
    runs = pq.read_table(write_parquet(report, tmp_path / "runs.parquet")[0])
    assert runs.column_names[-2:] == ["zz_new", "vision_range"]
    assert runs.schema.field("vision_range").type == pa.int64()
    assert runs.column("zz_new").null_count == runs.num_rows
    arms = read_csv(write_csv(report, tmp_path)[1])
    assert arms.column("factor_runs").to_pylist() == ["many", "many"]
    assert arms.column("runs").to_pylist() == [arm["runs"] for arm in report["arms"]]
    assert arms.column("zz_new_mean").to_pylist() == [2.5, 2.5]


def test_an_empty_report_writes_headers_and_empty_tables(tmp_path: Path) -> None:
    report = {"report_version": 1, "factors": ["agent"], "arms": [], "run_rows": []}
    runs_csv, arms_csv, comparisons_csv = write_csv(report, tmp_path)
    assert runs_csv.read_text().splitlines() == [",".join([*RUN_FIELDS, *METRICS])]
    assert arms_csv.read_text().splitlines()[0].startswith("arm,agent,runs,")
    assert comparisons_csv.read_text().splitlines()[0].startswith("a,b,paired,pairs,outcome,")
    runs = pq.read_table(write_parquet(report, tmp_path / "runs.parquet")[0])
    assert runs.num_rows == 0
    assert runs.schema.field("success").type == pa.bool_()
