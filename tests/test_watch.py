"""`oriole watch`: the pure fold and rendering, reconnection against a scripted server, and
the real gateway end to end."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from oriole import generators
from oriole.cli.common import settings
from oriole.cli.watch import (
    EMPTY_IN_VIEW,
    EMPTY_SEEN,
    PATH,
    PATH_IN_VIEW,
    WALL_IN_VIEW,
    WALL_UNSEEN,
    RunView,
    WatchError,
    cell,
    follow,
    gateway_base_url,
    render_info,
    render_maze,
    render_screen,
    run_feed_url,
    summary_text,
    watch,
    watch_async,
    window,
)
from oriole.environment.settings import load_settings
from oriole.environment.stack_file import StackInfo, write_stack
from oriole.events import ActionCompleted, RunEvent, RunFinished, dump_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData
from oriole.intents import ModelCall
from oriole.local_run import LocalRun
from oriole.schema_base import Point
from tests.support import maze_from_text

CORRIDOR = maze_from_text(
    """
    #######
    #.....#
    #.###.#
    #...#G#
    #######
    """,
    name="corridor",
)


def corridor_run(run_id: str = "run-watch") -> LocalRun:
    request = ExperimentStart(
        run_id=run_id,
        maze=MazeData.from_maze(CORRIDOR),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="ollama", model="qwen2.5:7b"),
    )
    return LocalRun(request, CORRIDOR)


def as_dicts(events: list[RunEvent]) -> list[dict[str, Any]]:
    return [json.loads(dump_run_event(e)) for e in events]


def plain_lines(text: Any) -> list[str]:
    return str(text.plain).split("\n")


# --- the fold -----------------------------------------------------------------------------


def test_fold_follows_position_vision_path_and_totals() -> None:
    run = corridor_run()
    call = ModelCall(call_id="c1", provider="ollama", model="qwen2.5:7b", input_tokens=800,
                     output_tokens=60, cost_usd=0.001)  # fmt: skip
    run.act("move_east", reasoning="[bold]east[/bold] <b>!</b>", model_call=call)
    run.act("move_north", reasoning="bump")
    view = RunView("run-watch")
    results = [view.apply(event) for event in as_dicts(run.events)]
    assert results[0] == "start"
    assert results.count("step") == 2
    assert (view.width, view.height, view.maze_name) == (7, 5, "corridor")
    assert view.start == (1, 1)
    assert view.position == (2, 1)
    assert view.path == {(1, 1), (2, 1)}
    assert (view.footsteps, view.actions, view.model_calls) == (1, 2, 1)
    assert (view.input_tokens, view.output_tokens) == (800, 60)
    assert view.cost_usd == pytest.approx(0.001)
    assert view.agent == "ollama:qwen2.5:7b"
    assert [(a.action, a.success, a.reasoning) for a in view.recent] == [
        ("move_east", True, "[bold]east[/bold] <b>!</b>"),
        ("move_north", False, "bump"),
    ]
    last = run.events[-1]
    assert isinstance(last, ActionCompleted)
    assert view.vision == {(x, y) for x, y, _ in last.payload.tiles_seen}
    assert view.seen[(0, 1)] == 1  # a wall, seen
    assert view.last_seq == len(run.events)
    assert view.finished is None


def test_duplicates_are_ignored_and_gaps_reported() -> None:
    run = corridor_run()
    run.act("move_east")
    run.act("move_east")
    events = as_dicts(run.events)
    view = RunView("run-watch")
    for event in events[:3]:
        view.apply(event)
    assert view.apply(events[1]) == "dup"
    assert view.apply(events[4]) == "gap"  # seq 5 while 4 is missing
    assert view.last_seq == 3
    assert view.apply(events[3]) == "other"
    assert view.apply(events[4]) == "step"
    assert view.position == (3, 1)  # both moves east, each applied once


def test_finished_run_summary() -> None:
    run = corridor_run()
    for action in ("move_east", "move_east", "move_east", "move_east"):
        run.act(action, reasoning="go")
    view = RunView("run-watch")
    for event in as_dicts(run.events):
        view.apply(event)
    end = run.events[-1]
    assert isinstance(end, RunFinished)
    assert view.finished is not None
    assert view.finished["stop_reason"] == end.payload.stop_reason.value == "goal_seen"
    text = summary_text(view).plain
    assert text.startswith("run run-watch: ✓ goal_seen — ")
    assert "4 footsteps, 4 actions" in text
    assert "ended at (5, 1)" in text


def test_starting_mid_run_draws_what_was_seen() -> None:
    """With --from-seq the maze itself is unknown: only the tiles seen are drawn."""
    run = corridor_run()
    run.act("move_east")
    run.act("move_east")
    view = RunView("run-watch", last_seq=3)
    for event in as_dicts(run.events)[3:]:
        view.apply(event)
    assert view.grid == []
    width, height = view.bounds()
    assert width >= 4 and height >= 2
    assert "@@" in render_maze(view, 20, 10).plain


# --- rendering ----------------------------------------------------------------------------


def test_render_corridor_exactly() -> None:
    run = corridor_run()
    run.act("move_east")
    view = RunView("run-watch")
    for event in as_dicts(run.events):
        view.apply(event)
    # S start, @ agent, · seen by this step, ◆ goal (known from the maze, not yet seen).
    assert plain_lines(render_maze(view, 20, 10)) == [
        "██████████████",
        "██SS@@······██",
        "██  ██████  ██",
        "██      ██◆◆██",
        "██████████████",
    ]
    assert cell(view, 2, 0) == WALL_IN_VIEW
    assert cell(view, 6, 1) == WALL_UNSEEN
    assert cell(view, 3, 1) == EMPTY_IN_VIEW
    for action in ("move_west", "move_south", "move_south"):
        run.act(action)
    for event in as_dicts(run.events)[view.last_seq :]:
        view.apply(event)
    assert view.position == (1, 3)
    assert cell(view, 1, 2) == PATH_IN_VIEW
    assert cell(view, 2, 1) == PATH  # visited, no longer in view
    assert cell(view, 4, 1) == EMPTY_SEEN


def test_window_follows_the_agent_and_stops_at_the_edges() -> None:
    assert window(500, 2, 40) == (0, 40)
    assert window(500, 250, 40) == (230, 270)
    assert window(500, 499, 40) == (460, 500)
    assert window(10, 5, 40) == (0, 10)
    assert window(10, 5, 0) == (0, 0)


def test_big_maze_shows_a_window_around_the_agent() -> None:
    maze = generators.generate("backtracker", 501, 501, seed=4, name="big")
    view = RunView("run-big")
    view.grid = [bytes(row) for row in maze.to_dict()["grid_data"]]
    view.width, view.height = 501, 501
    view.position = (401, 301)
    started = time.perf_counter()
    lines = plain_lines(render_maze(view, 30, 20))
    elapsed = time.perf_counter() - started
    assert len(lines) == 20
    assert all(len(line) == 60 for line in lines)
    # The agent is in the middle of the window: x 386..415, y 291..310.
    assert lines[10][30:32] == "@@"
    assert elapsed < 1.0  # a 30x20 window of a 500x500 maze, not the whole maze


def test_screen_fits_the_terminal() -> None:
    run = corridor_run()
    for _ in range(3):
        run.act("move_east", reasoning="a long reasoning " * 30)
    view = RunView("run-watch")
    for event in as_dicts(run.events):
        view.apply(event)
    for width, height in ((150, 45), (120, 30), (80, 24), (60, 20)):
        out = Console(file=io.StringIO(), width=width, height=height, color_system=None)
        out.print(render_screen(view, width, height))
        lines = out.file.getvalue().rstrip("\n").split("\n")  # type: ignore[attr-defined]
        assert len(lines) <= height, (width, height, len(lines))
        assert max(len(line) for line in lines) <= width


def test_reasoning_with_markup_is_printed_as_written() -> None:
    run = corridor_run()
    run.act("move_east", reasoning="[bold red]not markup[/] <script>")
    view = RunView("run-watch")
    for event in as_dicts(run.events):
        view.apply(event)
    out = Console(file=io.StringIO(), width=100, color_system=None)
    out.print(render_info(view, 3, 96))
    assert "[bold red]not markup[/] <script>" in out.file.getvalue()  # type: ignore[attr-defined]


# --- where the gateway is -----------------------------------------------------------------


def test_gateway_url_from_flag_stack_file_or_settings(tmp_path: Path) -> None:
    current = load_settings(env_file=None, home=tmp_path, gateway_port=8099)
    assert gateway_base_url(current) == "http://127.0.0.1:8099"
    assert gateway_base_url(current, "http://gw.example:9000/") == "http://gw.example:9000"
    info = StackInfo(
        pid=os.getpid(),
        kafka_bootstrap_servers="127.0.0.1:9092",
        broker_kind="tansu",
        topic_prefix="oriole",
        started_at="2026-11-24T12:00:00+00:00",
        gateway_url="http://127.0.0.1:8123",
    )
    write_stack(tmp_path, info)
    assert gateway_base_url(current) == "http://127.0.0.1:8123"
    everywhere = load_settings(env_file=None, home=tmp_path / "other", gateway_host="0.0.0.0")
    assert gateway_base_url(everywhere) == "http://127.0.0.1:8080"


def test_run_feed_url() -> None:
    assert run_feed_url("http://127.0.0.1:8080", "run-1", 0) == (
        "ws://127.0.0.1:8080/ws/runs/run-1?from_seq=0"
    )
    assert run_feed_url("https://gw.example/oriole/", "a:b.c", 17) == (
        "wss://gw.example/oriole/ws/runs/a%3Ab.c?from_seq=17"
    )
    assert run_feed_url("127.0.0.1:8080", "r", 1) == "ws://127.0.0.1:8080/ws/runs/r?from_seq=1"
    with pytest.raises(WatchError):
        run_feed_url("ftp://x", "r", 0)


# --- reconnection, against a scripted server ------------------------------------------------


@contextlib.asynccontextmanager
async def scripted_gateway(events: list[dict[str, Any]], script: list[str]) -> AsyncIterator[Any]:
    """A stand-in for ``/ws/runs/{id}``: connection i behaves as ``script[i]``.

    ``lag:N`` sends N events then ``lagging`` and closes 4008; ``drop:N`` sends N events and
    breaks the connection (1011); ``all`` sends the rest, ``caught_up``, ``finished``, 1000.
    Every request's ``from_seq`` is recorded.
    """
    requests: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        from_seq = int(query["from_seq"][0])
        requests.append(from_seq)
        mode = script[min(len(requests), len(script)) - 1]
        rest = events[from_seq:]
        if mode == "all":
            for event in rest:
                await ws.send(json.dumps({"kind": "event", "event": event}))
            await ws.send(json.dumps({"kind": "caught_up", "seq": len(events)}))
            await ws.send(json.dumps({"kind": "finished", "seq": len(events)}))
            await ws.close(1000)
            return
        name, count = mode.split(":")
        for event in rest[: int(count)]:
            await ws.send(json.dumps({"kind": "event", "event": event}))
        if name == "lag":
            await ws.send(json.dumps({"kind": "lagging", "detail": "behind"}))
            await ws.close(4008, "lagging")
        else:
            await ws.close(1011, "dropped")

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", requests


@pytest.mark.asyncio
async def test_resumes_after_lagging_and_after_a_drop_without_loss_or_duplicates() -> None:
    run = corridor_run()
    for action in ("move_east", "move_west", "move_east", "move_east", "move_east", "move_east"):
        run.act(action)
    events = as_dicts(run.events)
    script = ["lag:4", "drop:3", "all"]
    async with scripted_gateway(events, script) as (url, requests):
        view = RunView("run-watch")
        seen_connections: list[str] = []
        await asyncio.wait_for(
            follow(view, url, None, lambda: seen_connections.append(view.connection)), 60
        )
    assert requests == [0, 4, 7]
    assert view.last_seq == len(events)
    assert view.finished is not None and view.finished["stop_reason"] == "goal_seen"
    assert view.actions == sum(e["type"] == "action.completed" for e in events)
    assert "lagging; resuming" in seen_connections
    assert any(c.startswith("connection lost; retrying") for c in seen_connections)


@pytest.mark.asyncio
async def test_unreachable_gateway_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    with pytest.raises(WatchError, match="cannot reach the gateway"):
        await follow(RunView("run-x"), f"http://127.0.0.1:{port}", None, open_timeout=10)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ORIOLE_CONFIG_FILE", raising=False)
    monkeypatch.delenv("ORIOLE_GATEWAY_TOKEN", raising=False)
    settings.cache_clear()
    yield tmp_path / "home"
    settings.cache_clear()


def cli() -> typer.Typer:
    """`watch` on its own (the lead registers it in the `oriole` app)."""
    app = typer.Typer()
    app.command()(watch)
    return app


def test_cli_exit_2_when_the_gateway_is_unreachable(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(cli(), ["run-x", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 2, result.output
    assert "cannot reach the gateway" in result.output


def test_cli_prints_the_summary_and_exits_0(home: Path) -> None:
    run = corridor_run()
    for action in ("move_east", "move_east", "move_east", "move_east"):
        run.act(action)
    events = as_dicts(run.events)

    async def scenario() -> Any:
        async with scripted_gateway(events, ["all"]) as (url, _):
            return await asyncio.to_thread(
                CliRunner().invoke, cli(), ["run-watch", "--url", url], env={"COLUMNS": "120"}
            )

    result = asyncio.run(scenario())
    assert result.exit_code == 0, result.output
    assert "run run-watch: ✓ goal_seen" in result.output


# --- the real gateway ---------------------------------------------------------------------


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
        tansu=True,
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
        view = RunView(run_id)
        out = Console(file=io.StringIO(), width=140, height=45, color_system=None)
        watching = asyncio.create_task(watch_async(view, gateway.url, None, out))
        await publish(kafka_broker, stack.topics.experiments_start, body, run_id.encode())
        await asyncio.wait_for(watching, 180)
        await log.until(finished([run_id]))
        events = run_events(log.records, run_id)
    end = events[-1]
    assert isinstance(end, RunFinished)
    assert view.last_seq == len(events)
    assert view.finished is not None
    assert view.finished["stop_reason"] == end.payload.stop_reason.value
    assert view.actions == end.payload.actions
    assert view.position == (end.payload.position.x, end.payload.position.y)
    printed = out.file.getvalue()  # type: ignore[attr-defined]
    assert f"run {run_id}: " in printed
    assert "@@" in printed


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
        with pytest.raises(WatchError, match="a token is needed"):
            await follow(RunView("run-nowhere"), gateway.url, None)
        with pytest.raises(WatchError, match="token refused"):
            await follow(RunView("run-nowhere"), gateway.url, "wrong")
        with pytest.raises(WatchError, match="run-nowhere"):
            await asyncio.wait_for(follow(RunView("run-nowhere"), gateway.url, "reader"), 60)
