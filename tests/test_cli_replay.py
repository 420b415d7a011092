"""`oriole replay --verify` on archived runs of every built-in agent, and on a corrupted one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from oriole.events import ActionCompleted
from projections.store import store_batch
from tests.projection_support import agent_run, llm_like_run
from tests.test_cli_stack import _env

MODELS = ("random", "wall-follower", "frontier")


def replay(home: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(home) | {"ORIOLE_DATABASE_URL": dsn}
    return subprocess.run(
        [sys.executable, "-m", "oriole", "replay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verify_passes_on_every_builtin_agent_and_fails_on_a_corrupt_archive(
    pg_dsn: str, tmp_path: Path
) -> None:
    logs = {f"run-{m}": asyncio.run(agent_run(f"run-{m}", m, seed=2)) for m in MODELS}
    logs["run-llm"] = llm_like_run("run-llm")
    third = [e for e in logs["run-frontier"] if isinstance(e, ActionCompleted)][2]

    async def archive_then_corrupt() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            for events in logs.values():
                await store_batch(conn, events)
            for run_id in logs:
                await conn.execute(
                    "INSERT INTO run_events (run_id, seq, event_id, type, schema_version, time,"
                    " payload, run_started_at) SELECT $1 || '-bad', seq, gen_random_uuid(), type,"
                    " schema_version, time, payload, run_started_at FROM run_events"
                    " WHERE run_id = $1",
                    run_id,
                )
            # One outcome of the copy now claims the agent went somewhere else.
            await conn.execute(
                "UPDATE run_events SET payload = jsonb_set(payload, '{to,x}', "
                "to_jsonb((payload->'to'->>'x')::int + 1)) WHERE run_id = $1 AND seq = $2",
                "run-frontier-bad",
                third.seq,
            )
        finally:
            await conn.close()

    asyncio.run(archive_then_corrupt())
    home = tmp_path / "home"
    for run_id, events in logs.items():
        result = replay(home, pg_dsn, run_id, "--verify")
        assert result.returncode == 0, result.stderr
        assert f"run {run_id}: {len(events)} events re-derived, identical" in result.stdout

    rebuilt = subprocess.run(
        [sys.executable, "-m", "oriole", "projections", "rebuild"],
        env=_env(home) | {"ORIOLE_DATABASE_URL": pg_dsn},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    archived = sum(len(events) for events in logs.values()) * 2
    assert f"rebuilt from {archived} archived events" in rebuilt.stdout

    bad = replay(home, pg_dsn, "run-frontier-bad", "--verify")
    assert bad.returncode == 1
    to = third.payload.to
    assert (
        f"seq {third.seq} action.completed payload.to: recorded {{'x': {to.x + 1}, "
        f"'y': {to.y}}}, derived {{'x': {to.x}, 'y': {to.y}}}"
    ) in bad.stderr
    as_json = replay(home, pg_dsn, "run-frontier-bad", "--verify", "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["differences"][0]["path"] == "payload.to"


@pytest.mark.parametrize("run_id", ["no-such-run"])
def test_an_unknown_run_is_a_clear_error(pg_dsn: str, tmp_path: Path, run_id: str) -> None:
    result = replay(tmp_path / "home", pg_dsn, run_id, "--verify")
    assert result.returncode == 2
    assert f"run {run_id!r} is not in the archive" in result.stderr
