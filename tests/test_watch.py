"""`oriole watch`: the feed folded with the core's RunState, what the screen shows, reconnection
against a scripted server, and the real gateway end to end."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import typer
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from gateway.frames import CLOSE_LAGGING, CLOSE_NORMAL, event_frame
from oriole import generators
from oriole.cli.common import forget_process_state
from oriole.cli.render import (
    AGENT_STYLE,
    IN_VIEW_STYLE,
    PATH_STYLE,
    SEEN_STYLE,
    WALL_IN_VIEW_STYLE,
    WALL_SEEN_STYLE,
    WALL_STYLE,
    window,
)
from oriole.cli.watch import watch, watch_async
from oriole.cli.watch_feed import (
    WatchedRun,
    WatchError,
    follow,
    gateway_base_url,
    read_frame,
    run_feed_url,
)
from oriole.cli.watch_screen import (
    in_view,
    render_info,
    render_run_maze,
    render_screen,
    summary_text,
)
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import load_settings
from oriole.environment.stack_file import StackInfo, write_stack
from oriole.errors import OrioleError
from oriole.events import ActionCompleted, RunEvent, RunFinished, dump_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData
from oriole.geometry import Position
from oriole.intents import ActionType, ModelCall
from oriole.local_run import LocalRun
from oriole.maze import Maze
from oriole.run_state import RunState
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


CORRIDOR_START = Point(x=1, y=1)


def corridor_run(
    run_id: str = "run-watch", maze: Maze = CORRIDOR, start: Point = CORRIDOR_START
) -> LocalRun:
    request = ExperimentStart(
        run_id=run_id,
        maze=MazeData.from_maze(maze),
        start=start,
        agent=AgentSpec(provider="ollama", model="qwen2.5:7b"),
    )
    return LocalRun(request, maze)


def as_dicts(events: list[RunEvent]) -> list[dict[str, Any]]:
    return [json.loads(dump_run_event(e)) for e in events]


def as_frames(events: list[RunEvent]) -> list[RunEvent]:
    """The events as watch gets them: through the gateway's frames and watch's decoder."""
    decoded = []
    for event in events:
        frame = read_frame(event_frame(dump_run_event(event)))
        assert frame.kind == "event" and frame.event is not None
        decoded.append(frame.event)
    return decoded


def watched(events: list[RunEvent], run_id: str = "run-watch", from_seq: int = 0) -> WatchedRun:
    run = WatchedRun(RunState(run_id), from_seq=from_seq)
    for event in as_frames(events):
        assert run.apply(event) == "applied"
    return run


def plain_lines(text: Any) -> list[str]:
    return str(text.plain).split("\n")


def printed(renderable: Any, width: int = 100) -> str:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    out.print(renderable)
    return out.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def style_at(text: Text, x: int, y: int) -> str:
    """The style of tile (x, y) of a drawing at two characters per tile."""
    offset = sum(len(line) + 1 for line in text.plain.split("\n")[:y]) + 2 * x
    return " ".join(str(span.style) for span in text.spans if span.start <= offset < span.end)


# --- the fold -----------------------------------------------------------------------------


def test_fold_follows_position_vision_path_and_totals() -> None:
    run = corridor_run()
    call = ModelCall(call_id="c1", provider="ollama", model="qwen2.5:7b", input_tokens=800,
                     output_tokens=60, cost_usd=0.001)  # fmt: skip
    run.act("move_east", reasoning="[bold]east[/bold] <b>!</b>", model_call=call)
    run.act("move_north", reasoning="bump")
    assert as_frames(run.events) == run.events  # the gateway's frames decode to the events
    view = watched(run.events)
    state = view.state
    assert state.maze is not None and state.spec is not None
    assert (state.maze.width, state.maze.height, state.maze.name) == (7, 5, "corridor")
    assert state.spec.start.position() == (1, 1)
    assert state.position == (2, 1)
    assert set(state.visits) == {(1, 1), (2, 1)}
    tally = state.tally
    assert (tally.footsteps, tally.actions, tally.model_calls) == (1, 2, 1)
    assert (tally.input_tokens, tally.output_tokens) == (800, 60)
    assert tally.cost_usd == pytest.approx(0.001)
    assert [(r.record.action, r.record.success, r.reasoning) for r in view.recent()] == [
        (ActionType.MOVE_EAST, True, "[bold]east[/bold] <b>!</b>"),
        (ActionType.MOVE_NORTH, False, "bump"),
    ]
    last = run.events[-1]
    assert isinstance(last, ActionCompleted)
    assert in_view(view) == {(x, y) for x, y, _ in last.payload.tiles_seen}
    assert state.seen[Position(0, 1)] == 1  # a wall, seen
    assert state.seq == len(run.events)
    assert state.finished is None
    info = printed(render_info(view, 3, 96))
    assert "ollama:qwen2.5:7b" in info
    assert "1 footsteps, 2 actions, 1 turns" in info
    assert "800 in / 60 out, 1 model calls, $0.0010" in info
    assert f"(event {len(run.events)})" in info


def test_duplicates_are_ignored_and_gaps_reported() -> None:
    run = corridor_run()
    run.act("move_east")
    run.act("move_east")
    events = as_frames(run.events)
    view = WatchedRun(RunState("run-watch"))
    for event in events[:3]:
        view.apply(event)
    assert view.apply(events[1]) == "dup"
    assert view.apply(events[4]) == "gap"  # seq 5 while 4 is missing
    assert view.state.seq == 3
    assert view.apply(events[3]) == "applied"
    assert view.apply(events[4]) == "applied"
    assert view.state.position == (3, 1)  # both moves east, each applied once


def test_a_feed_that_is_not_the_runs_log_is_a_watch_error() -> None:
    """Frames that cannot be read and logs the fold refuses end watching with exit 2."""
    run = corridor_run()
    run.act("move_east")
    events = as_dicts(run.events)
    with pytest.raises(WatchError, match="frame that cannot be read"):
        read_frame("not json")
    teleported = {**events[1], "type": "run.teleported"}
    with pytest.raises(WatchError, match="event 2 that is not a run event"):
        read_frame(json.dumps({"kind": "event", "event": teleported}))
    assert read_frame(json.dumps({"kind": "lagging", "detail": "behind"})).detail == "behind"
    view = WatchedRun(RunState("run-watch"))
    with pytest.raises(WatchError, match="cannot be folded at event 1"):
        view.apply(as_frames(corridor_run("run-other").events)[0])
    with pytest.raises(WatchError, match="must be run.started"):
        view.apply(as_frames(run.events)[1].model_copy(update={"seq": 1}))
    assert issubclass(WatchError, OrioleError)


def test_finished_run_summary() -> None:
    run = corridor_run()
    for action in ("move_east", "move_east", "move_east", "move_east"):
        run.act(action, reasoning="go")
    view = watched(run.events)
    end = run.events[-1]
    assert isinstance(end, RunFinished)
    assert view.state.finished is not None
    assert view.state.finished.stop_reason == end.payload.stop_reason == "goal_seen"
    text = summary_text(view).plain
    assert text.startswith("run run-watch: ✓ goal_seen — ")
    assert "4 footsteps, 4 actions" in text
    assert "ended at (5, 1)" in text


def test_from_seq_still_folds_from_the_start_and_lists_only_later_actions() -> None:
    """The fold needs the run from its start: with --from-seq the whole maze is drawn and
    the totals are the run's; only the actions listed start after that event."""
    run = corridor_run()
    run.act("move_east", reasoning="first")
    run.act("move_east", reasoning="second")
    view = watched(run.events, from_seq=3)  # event 3 completes step 1
    assert plain_lines(render_run_maze(view, 20, 10)) == [
        "██████████████",
        "██S · @     ██",
        "██  ██████  ██",
        "██      ██G ██",
        "██████████████",
    ]
    assert [(r.record.step, r.reasoning) for r in view.recent()] == [(2, "second")]
    assert view.state.tally.actions == 2
    assert "2 footsteps, 2 actions" in printed(render_info(view, 3, 96))


# --- rendering ----------------------------------------------------------------------------


def test_render_corridor_exactly() -> None:
    run = corridor_run()
    run.act("move_east")
    view = watched(run.events)
    # S start, @ agent, G goal (known from the maze, not yet seen); what is seen and in
    # view shows in the tiles' colours.
    maze = render_run_maze(view, 20, 10)
    assert plain_lines(maze) == [
        "██████████████",
        "██S @       ██",
        "██  ██████  ██",
        "██      ██G ██",
        "██████████████",
    ]
    assert style_at(maze, 2, 1) == AGENT_STYLE
    assert style_at(maze, 2, 0) == WALL_IN_VIEW_STYLE
    assert style_at(maze, 6, 1) == WALL_STYLE  # beyond the vision range: never seen
    assert style_at(maze, 3, 1) == IN_VIEW_STYLE
    assert style_at(maze, 1, 2) == SEEN_STYLE  # seen from the start, not in view now
    assert style_at(maze, 1, 4) == WALL_SEEN_STYLE
    assert style_at(maze, 2, 3) == ""  # never seen
    for action in ("move_west", "move_south", "move_south"):
        run.act(action)
    for event in as_frames(run.events)[view.state.seq :]:
        view.apply(event)
    assert view.state.position == (1, 3)
    maze = render_run_maze(view, 20, 10)
    assert plain_lines(maze)[1:4] == ["██S ·       ██", "██· ██████  ██", "██@     ██G ██"]
    assert style_at(maze, 1, 2) == f"{PATH_STYLE} {IN_VIEW_STYLE}"
    assert style_at(maze, 2, 1) == f"{PATH_STYLE} {SEEN_STYLE}"  # visited, no longer in view
    assert style_at(maze, 4, 1) == SEEN_STYLE


def test_window_follows_the_agent_and_stops_at_the_edges() -> None:
    assert window(500, 2, 40) == (0, 40)
    assert window(500, 250, 40) == (230, 270)
    assert window(500, 499, 40) == (460, 500)
    assert window(10, 5, 40) == (0, 10)
    assert window(10, 5, 0) == (0, 0)


def test_big_maze_shows_a_window_around_the_agent() -> None:
    maze = generators.generate("backtracker", 501, 501, seed=4, name="big")
    assert maze.tile(401, 301) == 0
    view = watched(corridor_run("run-big", maze, Point(x=401, y=301)).events, "run-big")
    started = time.perf_counter()
    lines = plain_lines(render_run_maze(view, 30, 20))
    elapsed = time.perf_counter() - started
    assert len(lines) == 20
    assert all(len(line) == 60 for line in lines)
    # The agent is in the middle of the window: x 386..415, y 291..310.
    assert lines[10][30:32] == "@ "
    assert elapsed < 1.0  # a 30x20 window of a 500x500 maze, not the whole maze
    assert "big  x 382–419, y 291–310" in printed(render_screen(view, 80, 40), 80)


def test_screen_fits_the_terminal() -> None:
    run = corridor_run()
    for _ in range(3):
        run.act("move_east", reasoning="a long reasoning " * 30)
    view = watched(run.events)
    for width, height in ((150, 45), (120, 30), (80, 24), (60, 20)):
        out = Console(file=io.StringIO(), width=width, height=height, color_system=None)
        out.print(render_screen(view, width, height))
        lines = out.file.getvalue().rstrip("\n").split("\n")  # type: ignore[attr-defined]
        assert len(lines) <= height, (width, height, len(lines))
        assert max(len(line) for line in lines) <= width


def test_screen_before_the_run_started() -> None:
    view = WatchedRun(RunState("run-watch"))
    text = printed(render_screen(view, 120, 30), 120)
    assert "waiting for the run to start…" in text
    assert "? 0×0" in text and "(event 0)" in text


def test_reasoning_with_markup_is_printed_as_written() -> None:
    run = corridor_run()
    run.act("move_east", reasoning="[bold red]not markup[/] <script>")
    view = watched(run.events)
    assert "[bold red]not markup[/] <script>" in printed(render_info(view, 3, 96))


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
    with pytest.raises(WatchError, match="must be http"):
        run_feed_url("ftp://x", "r", 0)
    with pytest.raises(WatchError, match="bad gateway URL"):
        run_feed_url("http://[::1", "r", 0)


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
            await ws.close(CLOSE_NORMAL)
            return
        name, count = mode.split(":")
        for event in rest[: int(count)]:
            await ws.send(json.dumps({"kind": "event", "event": event}))
        if name == "lag":
            await ws.send(json.dumps({"kind": "lagging", "detail": "behind"}))
            await ws.close(CLOSE_LAGGING, "lagging")
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
        view = WatchedRun(RunState("run-watch"))
        seen_connections: list[str] = []
        await asyncio.wait_for(
            follow(view, url, None, lambda: seen_connections.append(view.connection)), 60
        )
    assert requests == [0, 4, 7]
    assert view.state.seq == len(events)
    assert view.state.finished is not None and view.state.finished.stop_reason == "goal_seen"
    assert view.state.tally.actions == sum(e["type"] == "action.completed" for e in events)
    assert view.state.position == run.state.position
    assert "lagging; resuming" in seen_connections
    assert any(c.startswith("connection lost; retrying") for c in seen_connections)


@pytest.mark.asyncio
async def test_from_seq_reads_the_feed_from_the_start() -> None:
    run = corridor_run()
    for action in ("move_east", "move_east", "move_east", "move_east"):
        run.act(action, reasoning="go")
    async with scripted_gateway(as_dicts(run.events), ["all"]) as (url, requests):
        view = WatchedRun(RunState("run-watch"), from_seq=5)
        await asyncio.wait_for(follow(view, url, None), 60)
    assert requests == [0]
    assert view.state.seq == len(run.events)
    assert [r.record.step for r in view.recent()] == [3, 4]


@pytest.mark.asyncio
async def test_unreachable_gateway_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    with pytest.raises(WatchError, match="cannot reach the gateway"):
        await follow(
            WatchedRun(RunState("run-x")), f"http://127.0.0.1:{port}", None, open_timeout=10
        )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ORIOLE_CONFIG_FILE", raising=False)
    monkeypatch.delenv("ORIOLE_GATEWAY_TOKEN", raising=False)
    forget_process_state()
    yield tmp_path / "home"
    forget_process_state()


def cli() -> typer.Typer:
    """`watch` on its own (the lead registers it in the `oriole` app)."""
    app = typer.Typer()
    app.command()(watch)
    return app


def test_cli_exit_2_when_the_gateway_is_unreachable(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through `oriole`'s entry point: its error handler reports watch's errors."""
    from oriole.cli import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for url, message in (
        (f"http://127.0.0.1:{port}", "error: cannot reach the gateway at "),
        # Printed as written, not read as rich markup.
        ("http://h[/x]:1", "error: bad gateway URL 'http://h[/x]:1': Invalid IPv6 URL"),
    ):
        monkeypatch.setattr(sys, "argv", ["oriole", "watch", "run-x", "--url", url])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert error.startswith(message), error


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
        watching = asyncio.create_task(watch_async(view, gateway.url, None, out))
        await publish(kafka_broker, stack.topics.experiments_start, body, run_id.encode())
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
