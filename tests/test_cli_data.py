"""`oriole up` with the embedded PostgreSQL, then the archive commands as a user runs them.

After the stack has stopped (its memory-only broker and topics gone), replay still works from
the archive alone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from oriole import generators
from tests.test_cli_stack import DEADLINE, _env, _wait_for, stop_up

pytestmark = pytest.mark.slow


def oriole(home: Path, *args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oriole", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def query(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(main())


def test_archive_commands_with_the_embedded_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "mazes").mkdir(parents=True)
    maze = generators.generate("backtracker", 21, 21, seed=5, name="lab")
    maze.save(home / "mazes" / "lab.json")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "oriole", "up"], env=_env(home), stdout=out, stderr=out
        )
    stack_file = home / "stack.json"
    try:
        _wait_for(stack_file.exists, "the stack file", up, log)
        url = oriole(home, "db", "url")
        assert url.returncode == 0, url.stderr
        dsn = url.stdout.strip()
        assert dsn.startswith("postgresql://")
        version = oriole(home, "db", "version", "--json")
        assert version.returncode == 0, version.stderr
        assert json.loads(version.stdout)["version"] == json.loads(version.stdout)["latest"]

        run = oriole(
            home, "run", "--maze", "lab", "--agent", "builtin:random", "--seed", "4",
            "--run-id", "run-one", "--max-moves", "60", "--wait", "--json",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout)
        deadline = time.monotonic() + DEADLINE
        finished = "SELECT 1 FROM experiments WHERE run_id = $1 AND status <> 'running'"
        while not query(dsn, finished, "run-one"):
            assert time.monotonic() < deadline, "the run never reached the projections"
            time.sleep(0.2)
        (row,) = query(dsn, "SELECT * FROM experiments WHERE run_id = 'run-one'")
        assert row["footsteps"] == summary["footsteps"]
        assert row["stop_reason"] == summary["stop_reason"]

        replayed = oriole(home, "replay", "run-one", "--to-topic", "--json")
        assert replayed.returncode == 0, replayed.stderr
        published = json.loads(replayed.stdout)
        assert published["topic"] == "oriole.runs.replay"
        assert published["events"] == len(oriole(home, "replay", "run-one").stdout.splitlines())

        rerun = oriole(
            home, "rerun", "run-one", "--set", "agent.seed=9", "--set", "limits.max_footsteps=20",
            "--run-id", "run-two", "--wait", "--json",
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert json.loads(rerun.stdout)["footsteps"] <= 20
        bad = oriole(home, "rerun", "run-one", "--set", "agent.options.temprature=0.2")
        assert bad.returncode == 2
        assert "agent.options.temprature" in bad.stderr
    finally:
        stop_up(up)
    assert up.returncode == 0, log.read_text()[-3000:]

    # The broker is gone with everything it held; the archive is not.
    verify = oriole(home, "replay", "run-one", "--verify")
    assert verify.returncode == 0, verify.stderr
    assert "identical" in verify.stdout
    printed = oriole(home, "replay", "run-two")
    assert printed.returncode == 0, printed.stderr
    events = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["payload"]["spec"]["rerun_of"] == "run-one"
    assert events[0]["payload"]["spec"]["agent"]["seed"] == 9
    missing = oriole(home, "replay", "no-such-run", "--verify")
    assert missing.returncode == 2
    assert "not in the archive" in missing.stderr


def start_up(home: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "oriole", "up"], env=_env(home), stdout=out, stderr=out
        )


def test_a_run_in_progress_survives_restarting_the_embedded_stack(tmp_path: Path) -> None:
    """The embedded broker forgets everything; the archive puts unfinished runs back."""
    home = tmp_path / "home"
    (home / "mazes").mkdir(parents=True)
    generators.generate("backtracker", 41, 41, seed=2, name="long").save(
        home / "mazes" / "long.json"
    )
    log = tmp_path / "up.log"
    up = start_up(home, log)
    try:
        _wait_for((home / "stack.json").exists, "the stack file", up, log)
        dsn = oriole(home, "db", "url").stdout.strip()
        published = oriole(
            home, "run", "--maze", "long", "--agent", "builtin:random", "--seed", "1",
            "--run-id", "run-long", "--max-moves", "400", "--max-actions", "5000",
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        archived = "SELECT count(*) AS n FROM run_events WHERE run_id = 'run-long'"
        deadline = time.monotonic() + DEADLINE
        while query(dsn, archived)[0]["n"] < 30:
            assert time.monotonic() < deadline, "the run never reached the archive"
            time.sleep(0.1)
    finally:
        stop_up(up)
    assert up.returncode == 0, log.read_text()[-3000:]
    before = oriole(home, "replay", "run-long").stdout.splitlines()
    assert before and '"run.finished"' not in before[-1]  # stopped mid-run

    up = start_up(home, log)
    try:
        _wait_for((home / "stack.json").exists, "the stack file", up, log)
        dsn = oriole(home, "db", "url").stdout.strip()
        ended = "SELECT stop_reason FROM experiments WHERE run_id = 'run-long'"
        deadline = time.monotonic() + DEADLINE
        while query(dsn, ended)[0]["stop_reason"] is None:
            assert time.monotonic() < deadline, "the restored run never finished"
            time.sleep(0.2)
    finally:
        stop_up(up)
    assert "Restored 1 unfinished run(s) from the archive: run-long" in log.read_text()
    after = [json.loads(line) for line in oriole(home, "replay", "run-long").stdout.splitlines()]
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
    assert after[: len(before)] == [json.loads(line) for line in before]
    assert after[-1]["type"] == "run.finished"
    verify = oriole(home, "replay", "run-long", "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
