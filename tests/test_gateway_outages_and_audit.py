"""Gateway hardening (issue 11) behind the door: a frozen database gets a prompt 503, and
start and cancel leave an audit trail by token name. Real gateway, broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from oriole.audit import AuditRecord
from tests.gateway_hardening_support import (
    ALICE_TOKEN,
    READ_TOKEN,
    TIMEOUT,
    WRITE_TOKEN,
    gateway_with,
    long_run,
)
from tests.gateway_support import database_pool, http_client
from tests.kafka_support import TopicReader, eventually, finished, make_stack, running_worker

# --- defect 3: a frozen database -------------------------------------------------------------


class FreezableProxy:
    """A TCP relay to PostgreSQL that can stop relaying, like a server under SIGSTOP.

    While frozen it accepts connections and reads what it is sent but forwards nothing in
    either direction; thawing forwards what was held back, so clean-up completes.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.thawed = asyncio.Event()
        self.thawed.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.thawed.set()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self.thawed.wait()
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.append(upstream_writer)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                await self.thawed.wait()
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_frozen_database_gets_a_prompt_503(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    real = urlsplit(pg_dsn)
    async with FreezableProxy(real.hostname or "127.0.0.1", real.port or 5432) as proxy:
        userinfo = real.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
        pool = await asyncpg.create_pool(
            urlunsplit(real._replace(netloc=netloc)), min_size=1, max_size=2
        )
        try:
            async with (
                gateway_with(stack, pool, gateway_database_timeout=0.5) as gateway,
                http_client(gateway) as client,
            ):
                assert (await client.get("/api/experiments")).status_code == 200
                proxy.thawed.clear()
                for path in ("/api/experiments", "/api/experiments/x", "/api/views/daily_summary"):
                    began = time.monotonic()
                    answer = await asyncio.wait_for(client.get(path), TIMEOUT)
                    took = time.monotonic() - began
                    assert answer.status_code == 503, path
                    assert answer.json() == {"error": "the database is unavailable; try again"}
                    assert took < 5.0, (path, took)
                began = time.monotonic()
                health = await asyncio.wait_for(client.get("/healthz"), TIMEOUT)
                assert health.status_code == 503 and health.json()["database"] is False
                assert time.monotonic() - began < 5.0
                proxy.thawed.set()

                async def recovered() -> bool:
                    return (await client.get("/api/experiments")).status_code == 200

                await eventually(recovered, TIMEOUT)
        finally:
            proxy.thawed.set()
            await asyncio.wait_for(pool.close(), TIMEOUT)


# --- defect 4: cancel and the audit trail ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_start_and_cancel_leave_an_audit_trail_by_token_name(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pg_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oriole")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    tokens: dict[str, Any] = {
        ALICE_TOKEN: {"scope": "write", "name": "alice"},
        WRITE_TOKEN: "write",
        READ_TOKEN: "read",
    }
    unnamed = "token-" + hashlib.sha256(WRITE_TOKEN.encode()).hexdigest()[:8]
    run_id = "run-audited"
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        gateway_with(stack, pool, tokens=tokens) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as events,
        TopicReader(kafka_broker, stack.topics.audit) as audit,
        http_client(gateway, ALICE_TOKEN) as alice,
        http_client(gateway, WRITE_TOKEN) as writer,
        http_client(gateway, READ_TOKEN) as reader,
    ):
        started = await alice.post("/api/experiments", json=long_run(run_id))
        assert started.status_code == 202, started.text
        await events.until(lambda records: any(r.key == run_id.encode() for r in records))
        assert (await reader.post(f"/api/experiments/{run_id}/cancel")).status_code == 403
        assert (await writer.get(f"/api/experiments/{run_id}/cancel")).status_code == 405
        assert (await writer.post("/api/experiments/bad%20id/cancel")).status_code == 400
        cancelled = await writer.post(f"/api/experiments/{run_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json() == {"run_id": run_id, "cancel": "requested"}
        await events.until(finished([run_id]))
        last = json.loads(events.records[-1].value)
        finish = [json.loads(r.value) for r in events.records if b'"run.finished"' in r.value]
        assert finish[0]["payload"]["stop_reason"] == "cancelled", last
        await audit.until(lambda records: len(records) >= 3)
        records = [AuditRecord.model_validate_json(r.value) for r in audit.records]
        raw = b"".join(r.value for r in audit.records)
    assert [(r.action, r.run_id, r.token_name, r.status, r.outcome) for r in records] == [
        ("experiment.start", run_id, "alice", 202, "accepted"),
        ("experiment.cancel", None, unnamed, 400, "refused"),
        ("experiment.cancel", run_id, unnamed, 202, "accepted"),
    ]
    assert all(r.client == "127.0.0.1" for r in records)
    for secret in (ALICE_TOKEN, WRITE_TOKEN, READ_TOKEN):
        assert secret.encode() not in raw
    logged = [r for r in caplog.records if r.name == "oriole.audit"]
    assert len(logged) == 3
    assert "alice" in logged[0].getMessage()
    text = "\n".join(
        caplog.handler.format(r) for r in caplog.records if r.name.startswith("oriole")
    )
    for secret in (ALICE_TOKEN, WRITE_TOKEN, READ_TOKEN):
        assert secret not in text
