"""`oriole watch` against the real gateway end to end (real broker, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rich.console import Console

from oriole import generators
from oriole.cli.watch import watch_async
from oriole.cli.watch_feed import WatchedRun, WatchError, follow
from oriole.environment.catalogue import MazeCatalogue
from oriole.events import RunFinished
from oriole.run_state import RunState


@contextlib.asynccontextmanager
async def real_gateway(
    tmp_path: Path, kafka_broker: str, topic_prefix: str, pg_dsn: str, **options: Any
) -> AsyncIterator[Any]:
    from gateway.server import Gateway
    from projections.projector import Projector
    from tests.kafka_support import EVENT_TIMEOUT, make_stack, running_worker

    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    projector = Projector(
        bootstrap_servers=stack.bootstrap, topics=stack.topics, pool=pool, batch_size=50
    )
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    tokens = options.pop("tokens", {})
    gateway = Gateway(
        stack.settings.model_copy(
            update={"gateway_host": "127.0.0.1", "gateway_port": 0, "gateway_tokens": tokens}
        ),
        bootstrap_servers=stack.bootstrap,
        topics=stack.topics,
        pool=pool,
        find_maze=MazeCatalogue.from_settings(stack.settings).get,
        **options,
    )
    try:
        async with running_worker(stack):
            await gateway.start()
            try:
                yield stack, gateway
            finally:
                await gateway.stop()
    finally:
        stop.set()
        await asyncio.wait_for(task, EVENT_TIMEOUT)
        await pool.close()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_watch_a_live_run_through_the_real_gateway(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    from tests.kafka_support import TopicReader, finished, publish, run_events, start_event

    run_id = "run-watch-live"
    maze = generators.generate("backtracker", 31, 31, seed=2, name="watch-live")
    body = start_event(
        run_id,
        maze.to_dict(),
        agent={"provider": "builtin", "model": "frontier", "seed": 1},
        limits={"max_footsteps": 300},
    )
    async with (
        real_gateway(tmp_path, kafka_broker, topic_prefix, pg_dsn) as (stack, gateway),
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        view = WatchedRun(RunState(run_id))
        out = Console(file=io.StringIO(), width=140, height=45, color_system=None)
        await publish(kafka_broker, stack.topics.experiments_start, body, run_id.encode())
        # A run id nobody requested yet gets 4004 at once (issue 17): watch once it started.
        await log.until(lambda records: len(run_events(records, run_id)) >= 1)
        watching = asyncio.create_task(watch_async(view, gateway.url, None, out))
        await asyncio.wait_for(watching, 180)
        await log.until(finished([run_id]))
        events = run_events(log.records, run_id)
    end = events[-1]
    assert isinstance(end, RunFinished)
    assert view.state.seq == len(events)
    assert view.state.finished == end.payload
    assert view.state.tally.actions == end.payload.actions
    assert view.state.position == end.payload.position.position()
    printed = out.file.getvalue()  # type: ignore[attr-defined]
    assert f"run {run_id}: " in printed
    assert "@ " in printed


@pytest.mark.slow
@pytest.mark.asyncio
async def test_watch_unknown_run_and_refused_token_through_the_real_gateway(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    async with real_gateway(
        tmp_path,
        kafka_broker,
        topic_prefix,
        pg_dsn,
        tokens={"reader": "read"},
        unknown_run_grace=1.0,
    ) as (_, gateway):
        nowhere = "run-nowhere"
        with pytest.raises(WatchError, match="a token is needed"):
            await follow(WatchedRun(RunState(nowhere)), gateway.url, None)
        with pytest.raises(WatchError, match="token refused"):
            await follow(WatchedRun(RunState(nowhere)), gateway.url, "wrong")
        with pytest.raises(WatchError, match="run-nowhere"):
            await asyncio.wait_for(follow(WatchedRun(RunState(nowhere)), gateway.url, "reader"), 60)
