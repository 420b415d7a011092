"""`oriole watch RUN_ID`: follow one run in the terminal, through the gateway.

A client of the gateway's ``/ws/runs/{run_id}`` feed (docs/gateway.md), in three parts:
:mod:`oriole.cli.watch_feed` folds the feed's events with the core's
:class:`~oriole.run_state.RunState` (reconnecting without loss or duplicates),
:mod:`oriole.cli.watch_screen` draws the run (the maze with
:func:`oriole.cli.render.render_maze`, totals, the last actions with their reasoning, the
connection state), and this module shows it with rich's ``Live`` display.

Exit status: 0 once the run has finished (after a final summary); 2 with a message (a
:class:`~oriole.cli.watch_feed.WatchError`, reported by the CLI's error handler) when the run
is unknown, the token is refused, the gateway cannot be reached or its feed cannot be read;
130 when interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Annotated

import typer
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from oriole.cli.common import console, err_console, settings
from oriole.cli.watch_feed import (
    RECONNECT_GIVE_UP,
    TOKEN_ENV,
    WatchedRun,
    follow,
    gateway_base_url,
)
from oriole.cli.watch_screen import render_screen, summary_text
from oriole.run_state import RunState

#: Screen refreshes per second at most.
REFRESH_PER_SECOND = 8.0


async def watch_async(
    run: WatchedRun,
    base_url: str,
    token: str | None,
    out: Console,
    *,
    give_up_after: float = RECONNECT_GIVE_UP,
) -> None:
    """Follow the run with a live display on ``out``; print the final state and summary."""
    changed = asyncio.Event()

    def screen() -> RenderableType:
        width, height = out.size
        return render_screen(run, width, height)

    # Refreshed from this task only (no auto-refresh thread reading the run meanwhile).
    with Live(
        screen(),
        console=out,
        auto_refresh=False,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as live:

        async def painter() -> None:
            while True:
                await changed.wait()
                changed.clear()
                live.update(screen(), refresh=True)
                await asyncio.sleep(1 / REFRESH_PER_SECOND)

        task = asyncio.create_task(painter())
        try:
            await follow(run, base_url, token, changed.set, give_up_after=give_up_after)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    out.print(screen())
    out.print(summary_text(run))


def watch(
    run_id: Annotated[str, typer.Argument(help="The run to watch.")],
    from_seq: Annotated[
        int,
        typer.Option(
            "--from-seq",
            min=0,
            help="List only the actions after this event (0: all). The run is still read "
            "from its first event, which the maze and totals need.",
        ),
    ] = 0,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Gateway URL (default: the running stack's, else ORIOLE_GATEWAY_HOST:PORT).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="Gateway token (read scope is enough).",
        ),
    ] = None,
) -> None:
    """Follow a run live in the terminal (through the gateway) until it ends."""
    base = gateway_base_url(settings(), url)
    token = token or os.environ.get(TOKEN_ENV) or None
    run = WatchedRun(RunState(run_id), from_seq=from_seq)
    try:
        asyncio.run(watch_async(run, base, token, console))
    except KeyboardInterrupt:
        err_console.print(Text("stopped watching (the run goes on)"))
        raise typer.Exit(130) from None
