"""A batch survives kill -9 of the whole `oriole up` (its memory-only broker included).

`oriole up` runs as a user runs it (embedded broker and PostgreSQL in its own home); the
batch is requested, the stack is killed mid-batch and started again in the same home. The
archive alone tells what happened: exactly the planned runs, each started and finished once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.faults.up_kill import UpStack
from bench.faults.waiting import until
from bench.processes import PG_START_TIMEOUT, kill_postmaster, postmaster_pid
from oriole.batch_events import BatchRequest
from oriole.kafka import prepare_clients
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.codec import encode
from oriole.kafka.topics import Topics
from tests.kafka_support import EVENT_TIMEOUT

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

SPEC: dict[str, Any] = {
    "batch_id": "up-kill",
    "name": "three agents, four mazes, one killed stack",
    "agents": ["frontier", "wall-follower", "random"],
    "mazes": [{"generator": "backtracker", "width": 31, "height": 31, "seeds": [1, 2, 3, 4]}],
    "starts": {"random": 1, "seed": 3},
    "repetitions": 5,
    "limits": {"max_footsteps": 150, "max_actions": 300},
    "caps": {"max_in_flight": 3},
}


async def _rows(dsn: str, sql: str) -> list[Any]:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return []
    try:
        return list(await conn.fetch(sql))
    except asyncpg.PostgresError:
        return []
    finally:
        await conn.close()


async def test_a_batch_carries_on_after_a_kill_9_of_the_whole_stack(tmp_path: Path) -> None:
    up = UpStack.create(tmp_path)
    up.service.start()
    try:
        info = await up.started(PG_START_TIMEOUT + 60)
        assert info is not None and info.database_url is not None, up.log_text()[-3000:]
        prepare_clients(True)  # the stack's broker is the embedded Tansu
        producer = make_producer(info.kafka_bootstrap_servers, client_id="test")
        await producer.start()
        try:
            request = BatchRequest(batch_id=SPEC["batch_id"], spec=SPEC)
            out = encode(Topics(info.topic_prefix).batches_commands, request, request.batch_id)
            await producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers)
        finally:
            await stop_quietly(producer)

        async def some_ended() -> bool:
            rows = await _rows(
                info.database_url or "", "SELECT count(*) FROM batch_runs WHERE ended"
            )
            return bool(rows) and rows[0][0] >= 15

        assert await until(some_ended, EVENT_TIMEOUT) is not None, up.log_text()[-3000:]
        up.service.kill9()
        up.service.start()
        info = await up.started(PG_START_TIMEOUT + 60)
        assert info is not None and info.database_url is not None, up.log_text()[-3000:]
        dsn = info.database_url

        async def batch_over() -> bool:
            rows = await _rows(dsn, "SELECT status FROM batches WHERE batch_id = 'up-kill'")
            return bool(rows) and rows[0][0] != "running"

        assert await until(batch_over, 3 * EVENT_TIMEOUT) is not None, up.log_text()[-3000:]
        batch = (await _rows(dsn, "SELECT * FROM batches WHERE batch_id = 'up-kill'"))[0]
        runs = await _rows(
            dsn,
            "SELECT run_id, count(*) FILTER (WHERE type = 'run.started') AS started,"
            " count(*) FILTER (WHERE type = 'run.finished') AS finished"
            " FROM run_events WHERE run_id ^@ 'up-kill:' GROUP BY run_id",
        )
    finally:
        await asyncio.to_thread(up.service.stop)
        data = up.home / "pgdata"
        await until(lambda: postmaster_pid(data) is None, 60)
        kill_postmaster(data)
    assert "Restored" in up.log_text()
    assert (batch["status"], batch["stop_reason"]) == ("finished", "completed"), batch["detail"]
    assert (batch["planned"], batch["finished"]) == (60, 60)
    assert len(runs) == 60
    assert all((row["started"], row["finished"]) == (1, 1) for row in runs), [
        (row["run_id"], row["started"], row["finished"])
        for row in runs
        if (row["started"], row["finished"]) != (1, 1)
    ]
