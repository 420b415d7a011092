"""`oriole archive prune`: old finished runs leave every table, whole month partitions are
dropped when they can be, and what remains still replays, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from typer.testing import CliRunner, Result

from oriole.cli import app
from oriole.cli.common import forget_process_state
from oriole.errors import ValidationError
from oriole.events import RunEvent
from oriole.replay import verify_run
from projections.migrate import prepare_partitions
from projections.partitions import partitions
from projections.prune import PruneError, parse_before, prune_archive
from projections.store import run_events_of, store_batch
from tests.archive_support import connect, row_counts, run_at

BEFORE = datetime(2025, 3, 15, tzinfo=UTC)


def at(month: int, day: int, year: int = 2025) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=UTC)


#: run id -> (start, finished)
RUNS = {
    "jan-a": (at(1, 5), True),  # January: every run goes, the partitions are dropped
    "jan-b": (at(1, 20), True),
    "feb-done": (at(2, 3), True),  # February: rows deleted, the month stays
    "feb-running": (at(2, 10), False),  # still running: kept
    "feb-parent": (at(2, 1), True),  # a remaining run was forked from it: kept
    "feb-batch-1": (at(2, 2), True),  # its finished batch goes whole
    "mar-before": (at(3, 1), True),  # the month of the date: rows deleted
    "mar-batch-1": (at(3, 11), True),  # its batch has a run after the date: kept
    "mar-batch-2": (at(3, 16), True),
    "mar-after": (at(3, 20), True),  # after the date, forked from feb-parent
    "old-default": (at(6, 1, 2024), True),  # no partition of its own: in DEFAULT, deleted
}
PRUNED = {"jan-a", "jan-b", "feb-done", "feb-batch-1", "mar-before", "old-default"}
KEPT = set(RUNS) - PRUNED


async def _fill(dsn: str) -> dict[str, list[RunEvent]]:
    logs = {
        run_id: await run_at(run_id, start, seed=i + 1, finished=finished)
        for i, (run_id, (start, finished)) in enumerate(RUNS.items())
    }
    conn = await connect(dsn)
    try:
        for month in (at(1, 1), at(3, 1)):  # January to April 2025
            await prepare_partitions(conn, month)
        for events in logs.values():
            await store_batch(conn, events)
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'experiments'::regclass"
            " AND attname = 'fork_step')"
        ):  # before migration 8: the column prune looks for, and nothing else
            await conn.execute("ALTER TABLE experiments ADD COLUMN IF NOT EXISTS forked_from text")
            await conn.execute(
                "UPDATE experiments SET forked_from = 'feb-parent' WHERE run_id = 'mar-after'"
            )
        else:
            await conn.execute(
                "UPDATE experiments SET forked_from = 'feb-parent', fork_step = 3"
                " WHERE run_id = 'mar-after'"
            )
        batches = [
            ("batch-old", "finished", at(2, 2) - timedelta(minutes=5), ["feb-batch-1"]),
            ("batch-mixed", "finished", at(3, 10), ["mar-batch-1", "mar-batch-2"]),
        ]
        for batch_id, status, started, run_ids in batches:
            await conn.execute(
                "INSERT INTO batches (batch_id, name, status, started_at, last_seq)"
                " VALUES ($1, $1, $2, $3, 1)",
                batch_id,
                status,
                started,
            )
            await conn.execute(
                "INSERT INTO batch_events (batch_id, seq, event_id, type, time, event)"
                " VALUES ($1, 1, $2, 'batch.started', $3, '{}')",
                batch_id,
                uuid.uuid4(),
                started,
            )
            for n, run_id in enumerate(run_ids):
                await conn.execute(
                    "INSERT INTO batch_runs (run_id, batch_id, planned_run_id, cell,"
                    " repetition, attempt) VALUES ($1, $2, $1, 'cell', $3, 1)",
                    run_id,
                    batch_id,
                    n,
                )
        requests = [
            ("o1", "jan-a", at(1, 5), None),  # of a pruned run
            ("o2", "mar-after", at(3, 20), None),  # of a kept run
            ("o3", "refused-old", at(1, 2), at(1, 2)),  # refused long ago, no batch
            ("o4", "refused-new", at(3, 18), at(3, 18)),  # refused after the date
        ]
        for origin, run_id, received, rejected in requests:
            await conn.execute(
                "INSERT INTO start_requests (origin, run_id, received_at, message, rejected_at)"
                " VALUES ($1, $2, $3, '\\x7b7d', $4)",
                origin,
                run_id,
                received,
                rejected,
            )
    finally:
        await conn.close()
    return logs


@pytest.fixture
def archive(pg_dsn: str) -> tuple[str, dict[str, list[RunEvent]]]:
    return pg_dsn, asyncio.run(_fill(pg_dsn))


async def _state(dsn: str) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        return {
            "counts": await row_counts(conn),
            "partitions": sorted(p.name for p in await partitions(conn)),
            "runs": {r["run_id"] for r in await conn.fetch("SELECT run_id FROM experiments")},
            "archived": {
                r["run_id"] for r in await conn.fetch("SELECT DISTINCT run_id FROM run_events")
            },
            "actions": {
                r["run_id"] for r in await conn.fetch("SELECT DISTINCT run_id FROM agent_actions")
            },
            "requests": {
                r["origin"] for r in await conn.fetch("SELECT origin FROM start_requests")
            },
            "batches": {r["batch_id"] for r in await conn.fetch("SELECT batch_id FROM batches")},
            "batch_runs": {r["run_id"] for r in await conn.fetch("SELECT run_id FROM batch_runs")},
        }
    finally:
        await conn.close()


async def _prune(dsn: str, dry_run: bool) -> Any:
    conn = await connect(dsn)
    try:
        return await prune_archive(conn, BEFORE, dry_run=dry_run)
    finally:
        await conn.close()


def test_a_dry_run_changes_nothing_and_counts_what_would_go(
    archive: tuple[str, dict[str, list[RunEvent]]],
) -> None:
    dsn, logs = archive
    before = asyncio.run(_state(dsn))
    report = asyncio.run(_prune(dsn, dry_run=True))
    assert asyncio.run(_state(dsn)) == before
    assert report.dry_run
    assert report.runs == len(PRUNED)
    assert report.events == sum(len(logs[run_id]) for run_id in PRUNED)
    assert report.rows["experiments"] == len(PRUNED)
    assert report.rows["agent_actions"] == sum(
        sum(e.type == "action.completed" for e in logs[run_id]) for run_id in PRUNED
    )
    assert report.rows["batches"] == report.rows["batch_events"] == report.batches == 1
    assert report.rows["start_requests"] == 2  # o1 and o3
    assert sorted(report.partitions_dropped) == [
        "agent_actions_p2025_01",
        "model_calls_p2025_01",
        "run_events_p2025_01",
    ]
    assert report.bytes_estimate > 0
    assert (report.kept_running, report.kept_fork_ancestors, report.kept_in_batches) == (1, 1, 1)

    real = asyncio.run(_prune(dsn, dry_run=False))
    assert real.to_dict() == {**report.to_dict(), "dry_run": False}


def test_prune_removes_exactly_the_old_finished_runs_from_every_table(
    archive: tuple[str, dict[str, list[RunEvent]]],
) -> None:
    dsn, logs = archive
    before = asyncio.run(_state(dsn))
    asyncio.run(_prune(dsn, dry_run=False))
    after = asyncio.run(_state(dsn))
    assert after["runs"] == after["archived"] == before["runs"] - PRUNED == KEPT
    assert after["actions"] == KEPT
    assert "feb-running" in after["runs"]  # running, started long before the date
    assert after["requests"] == {"o2", "o4"}
    assert after["batches"] == {"batch-mixed"}
    assert after["batch_runs"] == {"mar-batch-1", "mar-batch-2"}
    gone = set(before["partitions"]) - set(after["partitions"])
    assert gone == {"run_events_p2025_01", "agent_actions_p2025_01", "model_calls_p2025_01"}
    assert {"run_events_p2025_02", "run_events_default"} <= set(after["partitions"])

    async def remaining() -> dict[str, list[RunEvent]]:
        conn = await connect(dsn)
        try:
            return {run_id: await run_events_of(conn, run_id) for run_id in KEPT}
        finally:
            await conn.close()

    kept = asyncio.run(remaining())
    for run_id in KEPT:
        assert kept[run_id] == logs[run_id], run_id
        assert verify_run(kept[run_id]).ok, run_id
    # Pruning again finds nothing more.
    again = asyncio.run(_prune(dsn, dry_run=False))
    assert (again.runs, again.events, again.partitions_dropped) == (0, 0, [])
    assert asyncio.run(_state(dsn))["counts"] == after["counts"]


@pytest.fixture
def cli_env(pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("ORIOLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ORIOLE_DATABASE_URL", pg_dsn)
    forget_process_state()
    yield pg_dsn
    forget_process_state()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def test_the_command_prunes_and_a_remaining_run_still_verifies(
    archive: tuple[str, dict[str, list[RunEvent]]], cli_env: str
) -> None:
    dsn, logs = archive
    dry = invoke("archive", "prune", "--before", "2025-03-15", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["runs"] == len(PRUNED)
    assert asyncio.run(_state(dsn))["runs"] == set(RUNS)

    done = invoke("archive", "prune", "--before", "2025-03-15")
    assert done.exit_code == 0, done.output
    assert f"removed {len(PRUNED)}" in done.stdout
    assert "run_events_p2025_01" in done.stdout
    assert asyncio.run(_state(dsn))["runs"] == KEPT

    for run_id in ("mar-after", "feb-parent", "feb-running"):
        replayed = invoke("replay", run_id, "--verify")
        assert replayed.exit_code == 0, replayed.output
        assert f"{len(logs[run_id])} events re-derived, identical" in replayed.stdout


def test_the_date_must_be_a_past_date_or_time() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_before("2025-03-15", now) == BEFORE
    assert parse_before("2025-03-15T12:00:00+02:00", now) == datetime(2025, 3, 15, 10, tzinfo=UTC)
    assert parse_before("2025-03-15T12:00", now) == datetime(2025, 3, 15, 12, tzinfo=UTC)
    with pytest.raises(ValidationError, match="--before: expected a date YYYY-MM-DD"):
        parse_before("15/03/2025", now)
    with pytest.raises(ValidationError, match="in the future"):
        parse_before("2026-01-02", now)


def oriole(home: Path, *args: str, database: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env["ORIOLE_HOME"] = str(home)
    if database is not None:
        env["ORIOLE_DATABASE_URL"] = database
    return subprocess.run(
        [sys.executable, "-m", "oriole", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_input_is_one_clear_line_and_exit_status_2(tmp_path: Path) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:9/nowhere"
    cases = [
        (["--before", "yesterday"], "--before: expected a date YYYY-MM-DD"),
        (["--before", "2025-01-01"], "cannot connect to PostgreSQL at"),
    ]
    for args, message in cases:
        result = oriole(tmp_path / "home", "archive", "prune", *args, database=unreachable)
        assert result.returncode == 2, result
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_future_date_or_no_date_is_refused_before_the_database_is_opened(
    cli_env: str,
) -> None:
    with pytest.raises(ValidationError, match="2999-01-01T00:00:00[+]00:00 is in the future"):
        invoke("archive", "prune", "--before", "2999-01-01", "--dry-run")
    missing = CliRunner().invoke(app, ["archive", "prune"])
    assert missing.exit_code == 2 and "--before" in missing.output


def test_a_user_that_may_not_delete_gets_a_clear_error_and_nothing_changes(
    archive: tuple[str, dict[str, list[RunEvent]]],
) -> None:
    dsn, _ = archive
    name = f"oriole_test_writer_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(dsn)
    writer_dsn = urlunsplit(parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port or 5432}"))

    async def attempt() -> None:
        admin = await connect(dsn)
        try:
            await admin.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE oriole_writer')
            writer = await connect(writer_dsn)
            try:
                await prune_archive(writer, BEFORE, dry_run=False)
            finally:
                await writer.close()
        finally:
            await admin.execute(f'DROP OWNED BY "{name}"')
            await admin.execute(f'DROP ROLE "{name}"')
            await admin.close()

    before = asyncio.run(_state(dsn))
    with pytest.raises(PruneError, match="needs the tables' owner"):
        asyncio.run(attempt())
    assert asyncio.run(_state(dsn)) == before
