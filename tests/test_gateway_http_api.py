"""The gateway's HTTP side end to end (real broker, real PostgreSQL): tokens, the read and
start API, static files, HTTP details and shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.server import Gateway
from oriole import generators
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import SettingsError
from tests.gateway_support import (
    StalledClient,
    archive_events,
    database_pool,
    http_client,
    read_feed,
    recorded_run,
    running_gateway,
    static_files,
    ws_url,
)
from tests.kafka_support import (
    EVENT_TIMEOUT,
    eventually,
    make_stack,
    running_projector,
    running_worker,
    start_event,
)

READ_TOKEN = "read-tok-5d1c8a7e"
WRITE_TOKEN = "write-tok-93b0f2c4"


# --- authentication -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_tokens_are_required_and_never_logged(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pg_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oriole")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    tokens = {READ_TOKEN: "read", WRITE_TOKEN: "write"}
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, tokens=tokens) as gateway,
    ):
        async with http_client(gateway) as anonymous:
            missing = await anonymous.get("/api/experiments")
            assert missing.status_code == 401
            assert missing.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = await anonymous.get(
                "/api/experiments", headers={"Authorization": "Bearer not-a-token"}
            )
            assert wrong.status_code == 401
            query_only = await anonymous.get(f"/api/experiments?token={READ_TOKEN}")
            assert query_only.status_code == 401  # HTTP takes the header only
            assert (await anonymous.get("/healthz")).status_code == 200
            assert (await anonymous.get("/metrics")).status_code == 200
            refused_post = await anonymous.post("/api/experiments", content=b"{}")
            assert refused_post.status_code == 401
        async with http_client(gateway, READ_TOKEN) as reader:
            assert (await reader.get("/api/experiments")).status_code == 200
            assert (await reader.get("/api/views/batch_monitor")).status_code == 200
            assert (await reader.post("/api/experiments", content=b"{}")).status_code == 403
        async with http_client(gateway, WRITE_TOKEN) as writer:
            assert (await writer.get("/api/experiments")).status_code == 200
            assert (await writer.post("/api/experiments", content=b"{}")).status_code == 400
        for path in ("/ws/runs", f"/ws/runs/x?token=wrong{READ_TOKEN}"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(gateway, path)):
                    pass
            assert refused.value.response.status_code == 401
        async with connect(ws_url(gateway, f"/ws/runs?token={READ_TOKEN}")) as ws:
            await ws.ping()
        headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
        async with connect(ws_url(gateway, "/ws/runs"), additional_headers=headers) as ws:
            await ws.ping()
    # The gateway's records only: the test's own HTTP client logs the URLs it requests.
    ours = [r for r in caplog.records if r.name.startswith("oriole")]
    text = "\n".join(caplog.handler.format(r) for r in ours)
    assert any("-> 401" in r.getMessage() for r in ours), "requests were not logged at all"
    assert READ_TOKEN not in text
    assert WRITE_TOKEN not in text
    assert "AUTHENTICATION IS OFF" not in text


@pytest.mark.slow
@pytest.mark.asyncio
async def test_without_tokens_only_loopback_and_a_warning(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pg_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with database_pool(pg_dsn) as pool:
        exposed = Gateway(
            stack.settings.model_copy(update={"gateway_host": "0.0.0.0", "gateway_port": 0}),
            bootstrap_servers=stack.bootstrap,
            topics=stack.topics,
            pool=pool,
            find_maze=MazeCatalogue.from_settings(stack.settings).get,
        )
        with pytest.raises(SettingsError) as refused:
            await exposed.start()
        assert refused.value.field == "ORIOLE_GATEWAY_HOST"
        assert "ORIOLE_GATEWAY_TOKENS" in refused.value.reason
        with caplog.at_level(logging.WARNING, logger="oriole.gateway"):
            async with running_gateway(stack, pool) as gateway, http_client(gateway) as client:
                assert (await client.get("/api/experiments")).status_code == 200
        assert "AUTHENTICATION IS OFF" in caplog.text


# --- the HTTP API ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_read_api_lists_filters_and_shows_experiments(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    runs = {
        "api-a": await recorded_run(
            "api-a", "frontier", hours=0, comment="batch-1 a", labels={"batch": "b1"},
            prompt_version="v1",
        ),
        "api-b": await recorded_run(
            "api-b", "random", seed=2, hours=1, comment="batch-1 b", labels={"batch": "b2"},
            prompt_version="v2",
        ),
        "api-c": await recorded_run("api-c", "wall-follower", seed=3, hours=2, comment="other"),
    }  # fmt: skip
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool) as gateway,
        http_client(gateway) as client,
    ):
        await archive_events(pool, [e for events in runs.values() for e in events])

        async def ids(query: str) -> list[str]:
            answer = await client.get(f"/api/experiments{query}")
            assert answer.status_code == 200, answer.text
            return [e["run_id"] for e in answer.json()["experiments"]]

        assert await ids("") == ["api-c", "api-b", "api-a"]  # newest first
        assert await ids("?model=random") == ["api-b"]
        assert await ids("?provider=builtin&limit=2") == ["api-c", "api-b"]
        assert await ids("?comment=batch-1") == ["api-b", "api-a"]
        assert await ids("?comment=%25") == []  # % is literal, not a wildcard
        assert await ids("?label=batch:b2") == ["api-b"]
        assert await ids("?prompt_version=v1") == ["api-a"]
        listed = (await client.get("/api/experiments")).json()["experiments"]
        statuses = {e["run_id"]: e["status"] for e in listed}
        wanted = statuses["api-a"]
        expected_ids = [r for r in ("api-c", "api-b", "api-a") if statuses[r] == wanted]
        assert await ids(f"?status={wanted}") == expected_ids
        newest = (await client.get("/api/experiments?limit=1")).json()["experiments"][0]
        assert await ids(f"?before={newest['started_at'].replace('+', '%2B')}") == [
            "api-b",
            "api-a",
        ]
        for query, field in (
            ("?limit=0", "limit"),
            ("?status=nope", "status"),
            ("?label=nocolon", "label"),
            ("?before=yesterday", "before"),
        ):
            answer = await client.get(f"/api/experiments{query}")
            assert answer.status_code == 400
            assert [p["field"] for p in answer.json()["problems"]] == [field]

        one = await client.get("/api/experiments/api-a")
        assert one.status_code == 200
        document = one.json()
        experiment, maze, actions = document["experiment"], document["maze"], document["actions"]
        start = runs["api-a"][0].payload.spec
        end = runs["api-a"][-1].payload
        assert experiment["run_id"] == "api-a"
        assert experiment["model_name"] == "frontier"
        assert experiment["labels"] == {"batch": "b1"}
        assert experiment["start"] == {"x": start.start.x, "y": start.start.y}
        assert experiment["position"] == {"x": end.position.x, "y": end.position.y}
        assert experiment["footsteps"] == end.footsteps
        assert isinstance(experiment["cost_usd"], float)
        assert experiment["model_config"]["max_footsteps"] == 200
        assert maze["grid_data"] == start.maze.grid_data
        goal = start.maze.to_maze().goal
        assert maze["goal"] == {"x": goal.x, "y": goal.y}
        assert (maze["width"], maze["height"]) == (start.maze.width, start.maze.height)
        outcomes = [e.payload for e in runs["api-a"] if e.type == "action.completed"]
        assert [a["step"] for a in actions] == [o.step for o in outcomes]
        assert actions[-1]["to"] == {"x": outcomes[-1].to.x, "y": outcomes[-1].to.y}
        assert actions[0]["tiles_seen"] == [list(t) for t in outcomes[0].tiles_seen]
        assert set(actions[0]) >= {"from", "to", "action_type", "reasoning", "completed_at"}
        assert (await client.get("/api/experiments/api-zzz")).status_code == 404

        monitor = await client.get("/api/views/batch_monitor?run_id=api-b")
        assert monitor.status_code == 200
        rows = monitor.json()["rows"]
        assert [r["run_id"] for r in rows] == ["api-b"]
        assert rows[0]["labels"] == {"batch": "b2"}
        performance = (await client.get("/api/views/model_performance")).json()["rows"]
        assert {r["model_name"] for r in performance} == {"frontier", "random", "wall-follower"}
        turns = await client.get("/api/views/turn_statistics?run_id=api-c&limit=3")
        assert len(turns.json()["rows"]) == 3
        assert (await client.get("/api/views/model_performance?run_id=x")).status_code == 400
        assert (await client.get("/api/views/pg_user")).status_code == 404

        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "kafka": True, "database": True}
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["Content-Type"].startswith("text/plain")
        for name in (
            "oriole_gateway_clients",
            "oriole_gateway_frames_sent_total",
            "oriole_gateway_clients_dropped_total",
            "oriole_gateway_event_delivery_seconds",
        ):
            assert name in metrics.text
        assert (await client.delete("/api/experiments")).status_code == 405
        assert (await client.get("/api/nothing")).status_code == 404


@pytest.mark.slow
@pytest.mark.asyncio
async def test_post_starts_a_run_and_refuses_bad_starts(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    maze = generators.generate("backtracker", 21, 21, seed=5, name="posted").to_dict()
    good = json.loads(start_event("run-posted", maze, limits={"max_footsteps": 40}))
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        running_projector(stack, pool),
        running_gateway(stack, pool) as gateway,
        http_client(gateway) as client,
    ):
        accepted = await client.post("/api/experiments", json=good)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["run_id"] == "run-posted"
        watched = await read_feed(ws_url(gateway, "/ws/runs/run-posted"))
        assert watched.close_code == 1000
        assert watched.seqs == list(range(1, len(watched.seqs) + 1))
        assert watched.events[0].type == "run.started"
        assert watched.events[-1].type == "run.finished"

        async def projected() -> bool:
            answer = await client.get("/api/experiments/run-posted")
            return answer.status_code == 200 and answer.json()["experiment"]["status"] != "running"

        await eventually(projected)

        unnamed = dict(good, run_id="run-unnamed")
        del unnamed["maze"]
        unnamed["maze_name"] = "no-such-maze"
        bad_limit = dict(good, run_id="run-bad", limits={"max_footsteps": -5})
        for body, field in (
            (json.dumps(unnamed).encode(), "maze_name"),
            (json.dumps(bad_limit).encode(), "limits.max_footsteps"),
            (b"{not json", "body"),
            (b"[1, 2]", "body"),
        ):
            refused = await client.post("/api/experiments", content=body)
            assert refused.status_code == 400, refused.text
            assert field in [p["field"] for p in refused.json()["problems"]]
            assert all(p["reason"] for p in refused.json()["problems"])


# --- static files, HTTP details, shutdown ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_static_files_and_http_details(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    root = static_files(tmp_path / "www" / "static")
    (tmp_path / "www" / "secret.txt").write_text("secret\n")
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, static_dir=root) as gateway,
        http_client(gateway) as client,
    ):
        index = await client.get("/")
        assert index.status_code == 200
        assert index.headers["Content-Type"] == "text/html; charset=utf-8"
        assert index.headers["Cache-Control"] == "no-cache"
        assert "test viewer" in index.text
        script = await client.get("/static/app.js")
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert script.headers["Cache-Control"] == "no-cache"
        style = await client.get("/static/style.css")
        assert style.headers["Content-Type"].startswith("text/css")
        for path in ("%2e%2e/secret.txt", "..%2fsecret.txt", ".hidden", "nope.js", ""):
            answer = await _raw_http(gateway.port, f"GET /static/{path} HTTP/1.1\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:40])
        chunked = await _raw_http(
            gateway.port,
            "POST /api/experiments HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        assert chunked.startswith(b"HTTP/1.1 501")
        assert (await client.get("/nowhere")).status_code == 404
        # A websocket path without the upgrade is refused by the websocket handshake.
        assert (await client.get("/ws/runs")).status_code == 426
        # Pages of other sites may not use the gateway through the visitor's browser.
        foreign = {"Origin": "https://evil.example"}
        assert (await client.get("/api/experiments", headers=foreign)).status_code == 403
        assert (await client.post("/api/experiments", headers=foreign)).status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(gateway, "/ws/runs"), origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with connect(ws_url(gateway, "/ws/runs"), origin=gateway.url) as ws:
            await ws.ping()  # the viewer's own origin


async def _raw_http(port: int, request: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), EVENT_TIMEOUT)
    finally:
        writer.close()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_stop_closes_every_client_even_one_that_does_not_read(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with database_pool(pg_dsn) as pool:
        async with running_gateway(stack, pool) as gateway:
            connected = asyncio.Event()
            watcher = asyncio.create_task(
                read_feed(ws_url(gateway, "/ws/runs"), connected=connected)
            )
            await connected.wait()
            stalled = await StalledClient("127.0.0.1", gateway.port, "/ws/runs").__aenter__()
            started = time.monotonic()
        stopped_in = time.monotonic() - started
        await stalled.__aexit__()
        received = await watcher
    assert received.close_code == 1001
    assert stopped_in < 30
