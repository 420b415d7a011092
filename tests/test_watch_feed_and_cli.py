"""`oriole watch`: where the gateway is, reconnection against a scripted server, and the
command's exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import typer
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from gateway.frames import CLOSE_LAGGING, CLOSE_NORMAL
from oriole.cli.common import forget_process_state
from oriole.cli.watch import watch
from oriole.cli.watch_feed import WatchedRun, WatchError, follow, gateway_base_url, run_feed_url
from oriole.environment.settings import load_settings
from oriole.environment.stack_file import StackInfo, write_stack
from oriole.run_state import RunState
from tests.watch_support import as_dicts, corridor_run

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
