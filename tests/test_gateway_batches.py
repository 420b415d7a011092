"""The gateway's batch routes end to end (real broker, real PostgreSQL): the read API, requests
and cancels on the batch commands topic (audited), scopes, bad bodies and 404s."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oriole.audit import AuditRecord
from oriole.batch_events import BatchCancel, BatchRequest, parse_batch_command
from projections.store import store_batch
from tests.batch_support import CELLS, LogBuilder, finished_batch, running_batch
from tests.gateway_support import database_pool, http_client, running_gateway
from tests.kafka_support import TopicReader, make_stack
from tests.projection_support import agent_run

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

READ_TOKEN = "read-tok-6b1f3c9d"
WRITE_TOKEN = "write-tok-0e7a44b2"
TOKENS: dict[str, Any] = {READ_TOKEN: "read", WRITE_TOKEN: {"scope": "write", "name": "carol"}}


async def _archive(pool: Any) -> None:
    """Three batches an hour apart (finished, running, rejected) and a run of the running one."""
    older = finished_batch("gb-done")
    newer = running_batch("gb-live")
    newest = LogBuilder("gb-rejected").rejected()

    def later(log: LogBuilder, hours: int) -> list[Any]:
        return [e.model_copy(update={"time": e.time + timedelta(hours=hours)}) for e in log.events]

    run = await agent_run("gb-live:c1:r2", max_footsteps=20)
    async with pool.acquire() as conn:
        await store_batch(conn, run[:5], older.events + later(newer, 1) + later(newest, 2))


async def test_the_read_api_lists_and_shows_batches(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, tokens=TOKENS) as gateway,
    ):
        await _archive(pool)
        async with http_client(gateway) as anonymous:
            assert (await anonymous.get("/api/batches")).status_code == 401
            assert (await anonymous.get("/api/batches/gb-done")).status_code == 401
        async with http_client(gateway, READ_TOKEN) as reader:
            listed = (await reader.get("/api/batches")).json()["batches"]
            assert [b["batch_id"] for b in listed] == ["gb-rejected", "gb-live", "gb-done"]
            done = listed[2]
            assert "cells" not in done and "last_seq" not in done
            assert (done["status"], done["stop_reason"], done["planned"], done["launched"]) == (
                "finished", "completed", 4, 5,
            )  # fmt: skip
            assert done["spent_usd"] == pytest.approx(0.017) and done["spent_tokens"] == 170
            assert done["labels"] == {"team": "maze"} and done["warnings"] == ["a warning"]
            assert done["requested_by"] == "alice" and done["finished_at"].startswith("2026-")
            rejected = listed[0]
            assert rejected["status"] == "rejected"
            assert rejected["problems"] == [{"field": "agents", "reason": "no such agent"}]

            paged = await reader.get("/api/batches?limit=1&offset=1")
            assert [b["batch_id"] for b in paged.json()["batches"]] == ["gb-live"]
            running = await reader.get("/api/batches?status=running")
            assert [b["batch_id"] for b in running.json()["batches"]] == ["gb-live"]
            bad = await reader.get("/api/batches?limit=0&offset=-1&status=done")
            assert bad.status_code == 400
            assert {p["field"] for p in bad.json()["problems"]} == {"limit", "offset", "status"}

            shown = (await reader.get("/api/batches/gb-live")).json()
            assert set(shown) == {"batch", "cells", "runs"}
            assert shown["batch"]["batch_id"] == "gb-live" and shown["cells"] == CELLS
            assert shown["batch"]["in_flight"] == 2
            runs = {r["run_id"]: r for r in shown["runs"]}
            assert list(runs) == [
                "gb-live:c1:r1",
                "gb-live:c2:r1",
                "gb-live:c1:r2",
                "gb-live:c2:r1:a2",
            ]  # fmt: skip (launch order)
            assert runs["gb-live:c1:r1"]["ended"] is True
            assert runs["gb-live:c1:r2"]["run_status"] == "running"  # from experiments
            assert runs["gb-live:c2:r1:a2"]["run_status"] is None  # not started yet
            assert runs["gb-live:c2:r1:a2"]["attempt"] == 2
            assert runs["gb-live:c2:r1"]["cell"] == "c2" and runs["gb-live:c2:r1"]["retry"]

            for path in ("/api/batches/nope", "/api/batches/a%3Ab", "/api/batches/a/b"):
                missing = await reader.get(path)
                assert missing.status_code == 404, path
                assert "error" in missing.json()
            assert (await reader.put("/api/batches")).status_code == 405
            assert (await reader.delete("/api/batches/gb-live")).status_code == 405


async def test_requests_and_cancels_are_published_and_audited(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix, gateway_max_body_bytes=4096)
    spec = {"name": "grid", "agents": ["builtin/random"], "mazes": ["tiny"]}
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, tokens=TOKENS) as gateway,
    ):
        async with http_client(gateway, READ_TOKEN) as reader:
            assert (await reader.post("/api/batches", json=spec)).status_code == 403
            refused = await reader.post("/api/batches/gb-x/cancel")
            assert refused.status_code == 403
        async with http_client(gateway) as anonymous:
            assert (await anonymous.post("/api/batches", json=spec)).status_code == 401
        async with http_client(gateway, WRITE_TOKEN) as writer:
            assigned = await writer.post("/api/batches", json=spec)
            assert assigned.status_code == 202
            batch_id = assigned.json()["batch_id"]
            assert batch_id.startswith("batch-")
            named = await writer.post("/api/batches", json={**spec, "batch_id": "my-grid"})
            assert (named.status_code, named.json()) == (202, {"batch_id": "my-grid"})
            cancelled = await writer.post("/api/batches/my-grid/cancel")
            assert cancelled.status_code == 202
            assert cancelled.json() == {"batch_id": "my-grid", "cancel": "requested"}

            for body, field in (
                (b"[1, 2]", "body"),
                (b"not json", "body"),
                (json.dumps({**spec, "batch_id": "a:b"}).encode(), "batch_id"),
                (json.dumps({**spec, "batch_id": 7}).encode(), "batch_id"),
            ):
                answer = await writer.post("/api/batches", content=body)
                assert answer.status_code == 400, body
                assert [p["field"] for p in answer.json()["problems"]] == [field]
            too_big = await writer.post("/api/batches", content=b" " * 5000)
            assert too_big.status_code == 413 and "error" in too_big.json()
            bad_id = await writer.post("/api/batches/a%3Ab/cancel")
            assert bad_id.status_code == 400
            assert (await writer.get("/api/batches/my-grid/cancel")).status_code == 405

    async with TopicReader(kafka_broker, stack.topics.batches_commands) as commands:
        await commands.until(lambda records: len(records) >= 3)
    sent = sorted((parse_batch_command(r.value) for r in commands.records), key=lambda c: c.type)
    assert [c.type for c in sent] == ["batch.cancel", "batch.request", "batch.request"]
    cancel, *requests = sent
    assert isinstance(cancel, BatchCancel)
    assert (cancel.batch_id, cancel.requested_by) == ("my-grid", "carol")
    by_id = {r.batch_id: r for r in requests if isinstance(r, BatchRequest)}
    assert set(by_id) == {batch_id, "my-grid"}
    assert by_id[batch_id].spec == {**spec, "batch_id": batch_id}  # the id is in the spec too
    assert by_id["my-grid"].spec == {**spec, "batch_id": "my-grid"}
    assert {r.requested_by for r in by_id.values()} == {"carol"}
    assert {r.key for r in commands.records} == {batch_id.encode(), b"my-grid"}

    async with TopicReader(kafka_broker, stack.topics.audit) as audit:
        await audit.until(lambda records: len(records) >= 8)
    records = [AuditRecord.model_validate_json(r.value) for r in audit.records]
    # Refusals before the route (401, 403, 413) leave no record; the others do.
    summary = sorted((r.action, r.batch_id or "", r.status, r.token_name) for r in records)
    assert summary == sorted(
        [
            ("batch.request", batch_id, 202, "carol"),
            ("batch.request", "my-grid", 202, "carol"),
            ("batch.cancel", "my-grid", 202, "carol"),
            ("batch.request", "", 400, "carol"),
            ("batch.request", "", 400, "carol"),
            ("batch.request", "", 400, "carol"),
            ("batch.request", "", 400, "carol"),
            ("batch.cancel", "", 400, "carol"),
        ]
    )
    assert all(r.run_id is None for r in records)
    assert {r.outcome for r in records if r.status == 400} == {"refused"}
