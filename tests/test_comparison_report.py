"""Reports of a real batch (built-in agents, run by the scheduler's rules, stored by the
projector's code): the figures match the archive, pairing is found, `oriole report` prints
and exports them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.csv as pa_csv  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
import pytest

from oriole.comparison.report import Selection, build_report
from oriole.comparison.stats import wilson
from oriole.errors import ValidationError
from projections.migrate import migrate
from projections.report_source import ReportRuns, load_report_runs
from tests.chromium_support import artifact_dir, chromium, needs_chromium
from tests.report_support import archive_local_batch
from tests.test_report_html import FIGURES_VISIBLE, IMAGES_DECODED, PLOTS

BATCH = "b-report-1"
CLI_TIMEOUT = 300.0


async def _prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await archive_local_batch(conn, BATCH)
    finally:
        await conn.close()


async def _load(dsn: str, **selection: Any) -> ReportRuns:
    conn = await asyncpg.connect(dsn)
    try:
        return await load_report_runs(conn, **selection)
    finally:
        await conn.close()


async def _experiments(dsn: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT run_id, goal_seen, footsteps, cost_usd FROM experiments")
        return {row["run_id"]: dict(row) for row in rows}
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def batch_db(pg_template: str) -> Iterator[str]:
    from tests import pg_support

    name = pg_support.create_database(pg_template)
    try:
        dsn = pg_support.dsn_for(name)
        asyncio.run(_prepare(dsn))
        yield dsn
    finally:
        pg_support.drop_database(name)


def test_the_report_matches_the_archive(batch_db: str) -> None:
    runs = asyncio.run(_load(batch_db, batch_id=BATCH))
    report = build_report(runs.records(), Selection(batch_id=BATCH), running=runs.running)
    archived = asyncio.run(_experiments(batch_db))
    assert report["runs"] == len(archived) == 24 and report["running"] == 0
    assert report["factors"] == ["agent"]
    assert [arm["arm"] for arm in report["arms"]] == ["frontier", "random"]
    for row in report["run_rows"]:
        stored = archived[row["run_id"]]
        assert row["success"] == stored["goal_seen"]
        assert row["footsteps"] == stored["footsteps"]
        assert row["cost_usd"] == float(stored["cost_usd"])
    for arm in report["arms"]:
        mine = [archived[run_id] for run_id in arm["run_ids"]]
        wins = sum(run["goal_seen"] for run in mine)
        assert (arm["runs"], arm["successes"]) == (12, wins)
        interval = wilson(wins, 12)
        assert interval is not None
        assert (arm["success"]["low"], arm["success"]["high"]) == (interval.low, interval.high)
        steps = [run["footsteps"] for run in mine]
        assert arm["metrics"]["footsteps"]["mean"] == pytest.approx(sum(steps) / 12)
    # The batch ran every arm on the same places and repetitions: the comparison is paired.
    (comparison,) = report["comparisons"]
    assert comparison["paired"] and comparison["pairs"] == 12
    assert comparison["success"]["test"] == "mcnemar-exact"
    assert sum(map(sum, comparison["success"]["table"])) == 12
    assert comparison["metrics"]["footsteps"]["test"] == "wilcoxon"
    # Two mazes x two starts, each arm on each.
    assert len(report["mazes"]) == 2
    assert all(set(maze["arms"]) == {"frontier", "random"} for maze in report["mazes"])
    # Path efficiency only for runs that saw the goal, and never above 1.
    for row in report["run_rows"]:
        if row["path_efficiency"] is not None:
            assert row["success"] and 0 < row["path_efficiency"] <= 1


def test_the_same_seed_gives_the_same_report_and_labels_select_the_same_runs(
    batch_db: str,
) -> None:
    by_batch = asyncio.run(_load(batch_db, batch_id=BATCH))
    by_label = asyncio.run(_load(batch_db, labels={"batch_id": BATCH, "project": "reports"}))
    first = build_report(by_batch.records(), Selection(batch_id=BATCH, seed=5))
    again = build_report(by_batch.records(), Selection(batch_id=BATCH, seed=5))
    assert first == again
    labelled = build_report(by_label.records(), Selection(labels={"project": "reports"}, seed=5))
    assert sorted(r["run_id"] for r in labelled["run_rows"]) == sorted(
        r["run_id"] for r in first["run_rows"]
    )
    assert labelled["arms"] == first["arms"]
    other_seed = build_report(by_batch.records(), Selection(batch_id=BATCH, seed=6))
    assert other_seed["arms"] != first["arms"]  # the bootstrap intervals moved


def test_by_and_baseline_are_checked(batch_db: str) -> None:
    records = asyncio.run(_load(batch_db, batch_id=BATCH)).records()
    with pytest.raises(ValidationError) as caught:
        build_report(records, Selection(by=["agent", "colour"]))
    assert caught.value.field == "by" and "'colour'" in caught.value.reason
    assert "agent" in caught.value.reason  # the factors there are
    with pytest.raises(ValidationError) as caught:
        build_report(records, Selection(baseline="gpt-9"))
    assert caught.value.field == "baseline" and "'frontier'" in caught.value.reason
    with pytest.raises(ValidationError) as caught:
        build_report(records, Selection(by=["maze", "colour"]))
    assert "'maze': runs are matched on" in caught.value.reason
    assert "no factor 'colour'" in caught.value.reason  # every problem at once
    against = build_report(records, Selection(baseline="random"))
    assert [(c["a"], c["b"]) for c in against["comparisons"]] == [("frontier", "random")]
    by_endpoint = build_report(records, Selection(by=["agent", "endpoint"]))
    assert by_endpoint["factors"] == ["agent", "endpoint"]  # unset endpoints are left out
    assert [arm["arm"] for arm in by_endpoint["arms"]] == ["frontier", "random"]


def test_an_unknown_batch_is_not_found(batch_db: str) -> None:
    assert asyncio.run(_load(batch_db, batch_id="b-nope")).found is False


def _oriole(dsn: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env |= {"ORIOLE_HOME": str(home), "ORIOLE_DATABASE_URL": dsn, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "oriole", "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_oriole_report_prints_tables_json_and_refuses_bad_selections(
    batch_db: str, tmp_path: Path
) -> None:
    shown = _oriole(batch_db, tmp_path, BATCH)
    assert shown.returncode == 0, shown.stderr
    assert "24 finished runs" in shown.stdout
    assert "frontier" in shown.stdout and "random" in shown.stdout
    assert "mcnemar-exact" in shown.stdout and "Success by maze" in shown.stdout
    as_json = _oriole(batch_db, tmp_path, BATCH, "--json", "--seed", "3")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["runs"] == 24 and document["seed"] == 3
    assert "visits" not in document
    unknown = _oriole(batch_db, tmp_path, "b-nope")
    assert unknown.returncode != 0 and "no batch 'b-nope'" in unknown.stderr
    neither = _oriole(batch_db, tmp_path)
    assert neither.returncode != 0 and "--label" in neither.stderr
    bad_by = _oriole(batch_db, tmp_path, BATCH, "--by", "agent,colour")
    assert bad_by.returncode != 0 and "colour" in bad_by.stderr
    bad_label = _oriole(batch_db, tmp_path, "--label", "no-equals-sign")
    assert bad_label.returncode != 0 and "key=value" in bad_label.stderr


@pytest.mark.slow
@pytest.mark.asyncio
@needs_chromium
async def test_the_files_of_a_real_batch_match_the_archive_and_render(
    batch_db: str, tmp_path: Path
) -> None:
    """`oriole report --html --csv --parquet` of the real batch: the tables load with pyarrow
    and hold exactly the archived runs; the page renders in Chromium with every plot and no
    console message."""
    html, csv_dir, parquet = tmp_path / "r.html", tmp_path / "csv", tmp_path / "runs.parquet"
    written = await asyncio.to_thread(
        _oriole, batch_db, tmp_path, BATCH, "--html", str(html), "--csv", str(csv_dir),
        "--parquet", str(parquet),
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    archived = await _experiments(batch_db)
    for table in (pa_csv.read_csv(csv_dir / "runs.csv"), pq.read_table(parquet)):
        rows = {row["run_id"]: row for row in table.to_pylist()}
        assert set(rows) == set(archived)
        for run_id, stored in archived.items():
            assert rows[run_id]["success"] == stored["goal_seen"]
            assert rows[run_id]["footsteps"] == stored["footsteps"]
    arms = pq.read_table(tmp_path / "runs.arms.parquet").to_pylist()
    assert {(arm["arm"], arm["runs"]) for arm in arms} == {("frontier", 12), ("random", 12)}
    assert {row["arm"] for row in pa_csv.read_csv(csv_dir / "arms.csv").to_pylist()} == {
        "frontier",
        "random",
    }
    async with chromium(tmp_path) as browser:
        await browser.navigate(html.as_uri())
        await browser.wait_for(IMAGES_DECODED, "the heat maps to decode")
        figures = await browser.evaluate(FIGURES_VISIBLE)
        assert {figure["plot"] for figure in figures} == PLOTS
        assert all(figure["shown"] and figure["bodyHeight"] > 10 for figure in figures)
        heat_maps = [figure for figure in figures if figure["plot"] == "heatmap"]
        assert len(heat_maps) == 4  # two mazes x two arms
        await browser.screenshot(artifact_dir() / "report-real-batch.png")
        assert browser.console == []
