"""The gateway end to end (real broker, real PostgreSQL), plus its pure parts."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.api import InvalidRequest, experiments_query, view_query
from gateway.exposure import is_loopback
from gateway.frames import QueryError, Seam, decode_live, parse_run_query, ws_route
from gateway.http import authorize, bearer_token, static_path
from gateway.server import Gateway
from oriole import generators
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import SettingsError
from oriole.events import dump_run_event
from oriole.kafka.codec import encode
from tests.gateway_support import (
    Received,
    StalledClient,
    archive_events,
    archived,
    assert_exact,
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
    TopicReader,
    eventually,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)

READ_TOKEN = "read-tok-5d1c8a7e"
WRITE_TOKEN = "write-tok-93b0f2c4"


def long_run(run_id: str, *, seed: int = 7, actions: int = 600) -> bytes:
    """A random walk long enough to connect clients while it runs."""
    maze = generators.generate("backtracker", 41, 41, seed=seed, name=f"gw-{seed}")
    return start_event(
        run_id,
        maze.to_dict(),
        agent={"provider": "builtin", "model": "random", "seed": seed},
        limits={"max_footsteps": None, "max_actions": actions},
    )


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def _archived_at_least(pool: Any, run_id: str, count: int) -> bool:
    return await archived(pool, run_id) >= count


# --- one run: archive, then live ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_live_then_archive_seam_has_no_gap_and_no_duplicate(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-seam"
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        running_gateway(stack, pool) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        url = ws_url(gateway, f"/ws/runs/{run_id}")
        everyone = asyncio.create_task(
            read_feed(ws_url(gateway, "/ws/runs"), stop_when=_saw_finish(run_id))
        )
        await publish(kafka_broker, stack.topics.experiments_start, long_run(run_id))
        # No projector yet: nothing is archived when the first client connects mid-run, so
        # everything before its first live event must come from the archive later.
        await log.until(lambda records: len(run_events(records, run_id)) >= 20)
        early_connected = asyncio.Event()
        early = asyncio.create_task(read_feed(url, connected=early_connected))
        await early_connected.wait()
        assert await archived(pool, run_id) == 0
        async with running_projector(stack, pool):
            # The second client connects when the archive is partly written.
            await eventually(lambda: _archived_at_least(pool, run_id, 200))
            late = asyncio.create_task(read_feed(url))
            await log.until(finished([run_id]))
            first, second, summaries = await asyncio.gather(early, late, everyone)
        expected = run_events(log.records, run_id)
    on_kafka = {r.value for r in log.records}
    for received in (first, second):
        assert_exact(received, expected)
        # Live frames carry the Kafka record's bytes unchanged (gap fills come from the
        # archive: equal JSON, checked above, but JSONB may reorder keys).
        live = received.raw[received.kinds().index("caught_up") + 1 : -1]
        prefix = len('{"kind":"event","event":')
        assert any(raw[prefix:-1].encode() in on_kafka for raw in live)
        assert received.close_code == 1000
        assert received.kinds()[-1] == "finished"
        assert received.first("finished")["seq"] == len(expected)
        assert received.kinds().count("caught_up") == 1
        # Connected mid-run: part of the run came after caught_up, i.e. live.
        assert received.first("caught_up")["seq"] < len(expected) - 1
    assert first.first("caught_up")["seq"] == 0  # nothing was archived yet
    assert second.first("caught_up")["seq"] >= 200
    _check_summaries(summaries, run_id, expected)


def _saw_finish(run_id: str) -> Any:
    def check(received: Received) -> bool:
        last = received.frames[-1]
        return bool(last["run_id"] == run_id and last["type"] == "run.finished")

    return check


def _check_summaries(received: Received, run_id: str, expected: list[Any]) -> None:
    """The all-runs feed: every start, outcome and finish of the run, summarised."""
    frames = [f for f in received.frames if f["run_id"] == run_id]
    carried = [e for e in expected if e.type in ("run.started", "action.completed", "run.finished")]
    assert [f["seq"] for f in frames] == [e.seq for e in carried]
    assert {f["kind"] for f in frames} == {"run"}
    assert frames[0]["type"] == "run.started"
    assert frames[0]["summary"]["model_name"] == "random"
    assert frames[0]["summary"]["status"] == "running"
    progress = frames[-2]["summary"]
    last_action = carried[-2].payload
    assert progress["footsteps"] == last_action.footsteps
    assert progress["actions"] == last_action.step
    assert progress["position"] == {"x": last_action.to.x, "y": last_action.to.y}
    end = frames[-1]["summary"]
    assert end["stop_reason"] == expected[-1].payload.stop_reason.value
    assert end["success"] == expected[-1].payload.success


@pytest.mark.slow
@pytest.mark.asyncio
async def test_reconnecting_with_from_seq_resumes_exactly(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-resume"
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        running_projector(stack, pool),
        running_gateway(stack, pool) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        await publish(
            kafka_broker, stack.topics.experiments_start, long_run(run_id, seed=3, actions=400)
        )
        await log.until(lambda records: len(run_events(records, run_id)) >= 5)
        url = ws_url(gateway, f"/ws/runs/{run_id}")
        # Disconnect mid-run, with live events still coming.
        before = await read_feed(url, stop_when=lambda r: len(r.seqs) >= 150)
        last = before.seqs[-1]
        after = await read_feed(f"{url}?from_seq={last}")
        await log.until(finished([run_id]))
        expected = run_events(log.records, run_id)
    assert last < len(expected)
    assert before.seqs == list(range(1, last + 1))
    assert after.seqs[0] == last + 1
    union = Received(frames=before.frames + after.frames)
    assert_exact(union, expected)
    assert after.close_code == 1000
    assert after.kinds()[-1] == "finished"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_client_that_stops_reading_is_dropped_and_others_get_everything(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-flood"
    # About 3 KB per outcome (a wide view): far more than the socket buffers can hold.
    events = await recorded_run(
        run_id,
        "random",
        size=61,
        rules={"vision_range": 8, "see_through_walls": True},
        max_footsteps=None,
        max_actions=1800,
        max_duration_seconds=None,
        goal_rule="reached",
    )
    records = [encode(stack.topics.runs_events, e, run_id) for e in events]
    dropped_before = _metric("oriole_gateway_clients_dropped_total")
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, queue_size=10) as gateway,
    ):
        # The first event is archived, so both clients are live subscribers once caught up.
        await archive_events(pool, events[:1])
        url = ws_url(gateway, f"/ws/runs/{run_id}")
        normal = Received()
        reader = asyncio.create_task(read_feed(url, received=normal))
        await eventually(_is_true(lambda: "caught_up" in normal.kinds()))
        async with StalledClient("127.0.0.1", gateway.port, f"/ws/runs/{run_id}") as stalled:
            assert (await stalled.frame())[0] == 1  # seq 1 from the archive
            _, caught_up = await stalled.frame()
            assert json.loads(caught_up)["kind"] == "caught_up"
            # From here on it reads nothing. Publish until the gateway gives up on it.
            producer = _producer(kafka_broker)
            await producer.start()
            try:
                sent = 0
                while _metric("oriole_gateway_clients_dropped_total") == dropped_before:
                    assert sent < len(records), "the stalled client was never dropped"
                    for out in records[sent : sent + 500]:
                        await producer.send(out.topic, out.value, key=out.key)
                    await producer.flush()
                    sent += 500
                    await eventually(_has_events(normal, min(sent, len(events))))
                for out in records[sent:]:
                    await producer.send(out.topic, out.value, key=out.key)
                await producer.flush()
            finally:
                await producer.stop()
            frames, code = await asyncio.wait_for(stalled.until_close(), EVENT_TIMEOUT)
        received = await asyncio.wait_for(reader, EVENT_TIMEOUT)
    assert code == 4008
    assert frames[-1]["kind"] == "lagging"
    got = [f["event"]["seq"] for f in frames if f["kind"] == "event"]
    assert got == list(range(2, len(got) + 2))  # in order, nothing skipped, until dropped
    assert len(got) < len(events) - 1
    assert_exact(received, events)
    assert received.close_code == 1000
    assert _metric("oriole_gateway_clients_dropped_total") == dropped_before + 1


def _producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=16 << 20)


def _has_events(received: Received, count: int) -> Any:
    async def check() -> bool:
        return len(received.seqs) >= count

    return check


def _is_true(check: Any) -> Any:
    async def wrapped() -> bool:
        return bool(check())

    return wrapped


# --- replay and archived runs ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_replay_of_an_archived_run(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    events = await recorded_run("run-replay", "random", max_footsteps=150)
    span = (events[-1].time - events[0].time).total_seconds()
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, unknown_run_grace=0.5) as gateway,
    ):
        await archive_events(pool, events)
        url = ws_url(gateway, "/ws/runs/run-replay")
        fastest = await read_feed(f"{url}?replay=max")
        started = time.monotonic()
        paced = await read_feed(f"{url}?replay=1000")
        elapsed = time.monotonic() - started
        tail = await read_feed(f"{url}?replay=max&from_seq={len(events) - 3}")
        live_view = await read_feed(url)  # a finished run through the live feed
        past_end = await read_feed(f"{url}?from_seq={len(events)}")
        unknown = await read_feed(ws_url(gateway, "/ws/runs/run-nobody?replay=max"))
        unknown_live = await read_feed(ws_url(gateway, "/ws/runs/run-nobody"))
        bad_speed = await read_feed(f"{url}?replay=0")
        bad_seq = await read_feed(f"{url}?from_seq=-1")
    for received in (fastest, paced, live_view):
        assert_exact(received, events)
        assert received.kinds()[-2:] == ["caught_up", "finished"]
        assert received.first("finished")["seq"] == len(events)
        assert received.close_code == 1000
    assert elapsed >= span / 1000 * 0.9
    assert tail.seqs == [len(events) - 2, len(events) - 1, len(events)]
    assert past_end.kinds() == ["caught_up", "finished"]
    assert past_end.close_code == 1000
    for received in (unknown, unknown_live):
        assert received.kinds() == ["error"]
        assert received.close_code == 4004
    for received in (bad_speed, bad_seq):
        assert received.kinds() == ["error"]
        assert received.close_code == 4400


@pytest.mark.slow
@pytest.mark.asyncio
async def test_archived_events_are_the_same_json_as_on_kafka(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    """Same fields, values and envelope order (JSONB may reorder keys of free-form objects)."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    events = await recorded_run("run-exact", "frontier", max_footsteps=20)
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool) as gateway,
    ):
        await archive_events(pool, events)
        received = await read_feed(ws_url(gateway, "/ws/runs/run-exact?replay=max"))
    frames = [json.loads(raw) for raw in received.raw[:-2]]
    assert frames == [{"kind": "event", "event": json.loads(dump_run_event(e))} for e in events]
    assert [list(f["event"]) for f in frames] == [
        list(json.loads(dump_run_event(e))) for e in events
    ]


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


# --- pure parts -----------------------------------------------------------------------------


def test_the_seam_sends_each_seq_once_and_spots_gaps() -> None:
    seam = Seam(3)
    assert [seam.verdict(s) for s in (2, 3, 4, 6)] == ["skip", "skip", "send", "gap"]
    seam.advance(4)
    assert seam.contiguous([3, 4, 5, 6, 8]) == 4
    with pytest.raises(ValueError):
        seam.advance(6)


def test_run_queries() -> None:
    assert parse_run_query({}).from_seq == 0
    assert parse_run_query({"from_seq": ["12"], "token": ["t"]}).from_seq == 12
    assert parse_run_query({"replay": ["max"]}).replay == math.inf
    assert parse_run_query({"replay": ["2.5"]}).replay == 2.5
    for bad in ({"from_seq": ["-1"]}, {"from_seq": ["x"]}, {"replay": ["0"]},
                {"replay": ["1001"]}, {"replay": ["nan"]}, {"from_seq": ["1", "2"]}):  # fmt: skip
        with pytest.raises(QueryError):
            parse_run_query(bad)
    assert ws_route("/ws/runs") == ("runs", "")
    assert ws_route("/ws/runs/run-1") == ("run", "run-1")
    assert ws_route("/ws/runs/a/b") is None
    assert ws_route("/api/experiments") is None


def test_live_events_are_decoded_once_with_their_summary() -> None:
    value = (
        b'{"event_id":"e","run_id":"r","seq":5,"schema_version":1,"time":"2026-11-01T12:00:00Z",'
        b'"type":"action.completed","payload":{"step":2,"turn":1,"footsteps":1,'
        b'"to":{"x":3,"y":4}}}'
    )
    event = decode_live(value)
    assert (event.run_id, event.seq, event.finished) == ("r", 5, False)
    assert json.loads(event.frame) == {"kind": "event", "event": json.loads(value)}
    assert event.summary is not None
    summary = json.loads(event.summary)
    assert summary["kind"] == "run"
    assert summary["summary"]["position"] == {"x": 3, "y": 4}
    assert summary["summary"]["actions"] == 2
    requested = decode_live(value.replace(b"action.completed", b"action.requested"))
    assert requested.summary is None


def test_experiment_filters_are_parameters() -> None:
    statement = experiments_query(
        {"comment": ["50%_off'; drop table x"], "label": ["team:a:b"], "model": ["m"]}
    )
    assert "drop table" not in statement.sql
    assert statement.args[0] == "m"
    assert statement.args[1] == "50\\%\\_off'; drop table x%"
    assert json.loads(statement.args[2]) == {"team": "a:b"}
    with pytest.raises(InvalidRequest) as problems:
        experiments_query({"limit": ["5000"], "status": ["x"]})
    assert {p[0] for p in problems.value.problems} == {"limit", "status"}
    assert view_query("pg_shadow", {}) is None


def test_static_paths_stay_inside_the_folder(tmp_path: Path) -> None:
    root = static_files(tmp_path / "static")
    assert static_path(root, "app.js") == (root / "app.js").resolve()
    for bad in ("../x", "%2e%2e/x", "/etc/passwd", "a\\b", ".hidden", "", "x\x00"):
        assert static_path(root, bad) is None


def test_authorization_rules() -> None:
    tokens = {"r": "read", "w": "write"}
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert authorize({}, "write", None) is None
    assert authorize(tokens, "public", None) is None
    assert authorize(tokens, "read", None) == 401
    assert authorize(tokens, "read", "nope") == 401
    assert authorize(tokens, "read", "r") is None
    assert authorize(tokens, "write", "r") == 403
    assert authorize(tokens, "write", "w") is None
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
