"""`oriole watch RUN_ID`: follow one run in the terminal, through the gateway.

A client of the gateway's ``/ws/runs/{run_id}`` feed (docs/gateway.md). The run's events are
folded into a small :class:`RunView`, shown with rich's ``Live`` display: the maze around the
agent (a window that follows it on big mazes) with walls, goal, what was seen and the path,
the last actions with their reasoning, totals and the connection state. A lagging or dropped
connection resumes with ``from_seq`` set to the last event received, so nothing is missed or
shown twice.

Exit status: 0 once the run has finished (after a final summary); 2 with a message when the
run is unknown, the token is refused or the gateway cannot be reached.

Rendering is pure (:func:`render_maze`, :func:`render_screen`, :func:`summary_text` take a
``RunView`` and sizes and return rich renderables), so it is tested without a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from oriole.cli.common import console, err_console, settings
from oriole.environment.settings import Settings
from oriole.environment.stack_file import NoStackError, read_stack

TOKEN_ENV = "ORIOLE_GATEWAY_TOKEN"
#: Actions kept for the "last actions" panel.
RECENT_ACTIONS = 8
#: Seconds to open a websocket before the gateway counts as unreachable.
OPEN_TIMEOUT = 15.0
#: After a drop, keep retrying this long before giving up (exit 2).
RECONNECT_GIVE_UP = 120.0
#: Longest wait between two reconnection attempts.
MAX_BACKOFF = 10.0
#: Screen refreshes per second at most.
REFRESH_PER_SECOND = 8.0
#: Width of the info column when the terminal is wide enough for two columns.
INFO_WIDTH = 52
TWO_COLUMNS_FROM = 110

EMPTY, WALL, GOAL = 0, 1, 2

Tile = tuple[int, int]
ApplyResult = Literal["dup", "gap", "start", "step", "finish", "other"]


class WatchError(Exception):
    """Watching cannot go on: unknown run, refused token, unreachable gateway (exit 2)."""


# --- the run, folded from its events --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionLine:
    step: int
    turn: int
    action: str
    success: bool
    from_: Tile | None
    to: Tile | None
    message: str
    reasoning: str | None


@dataclass
class RunView:
    """What the terminal shows of a run: a fold over its events, in seq order."""

    run_id: str
    last_seq: int = 0
    maze_name: str = ""
    width: int = 0
    height: int = 0
    #: Rows of the maze grid, ``grid[y][x]``: 0 empty, 1 wall, 2 goal (empty if not known).
    grid: list[bytes] = field(default_factory=list)
    start: Tile | None = None
    position: Tile | None = None
    agent: str = ""
    seen: dict[Tile, int] = field(default_factory=dict)
    vision: set[Tile] = field(default_factory=set)
    path: set[Tile] = field(default_factory=set)
    recent: deque[ActionLine] = field(default_factory=lambda: deque(maxlen=RECENT_ACTIONS))
    footsteps: int = 0
    actions: int = 0
    turns: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    goal_seen: bool = False
    cancel_requested: bool = False
    finished: dict[str, Any] | None = None
    connection: str = "connecting"
    _reasoning: str | None = None

    def apply(self, event: Mapping[str, Any]) -> ApplyResult:
        """Fold one run event (a dict as on Kafka); ``gap`` if events before it are missing."""
        seq = event.get("seq")
        if not isinstance(seq, int):
            return "other"
        if seq <= self.last_seq:
            return "dup"
        if seq != self.last_seq + 1:
            return "gap"
        self.last_seq = seq
        payload = event.get("payload")
        data: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
        kind = event.get("type")
        if kind == "run.started":
            self._start(data)
            return "start"
        if kind == "model.called":
            self.model_calls += 1
            self.input_tokens += int(data.get("input_tokens") or 0)
            self.output_tokens += int(data.get("output_tokens") or 0)
            self.cost_usd += float(data.get("cost_usd") or 0.0)
            return "other"
        if kind == "action.requested":
            reasoning = data.get("reasoning")
            self._reasoning = reasoning if isinstance(reasoning, str) else None
            return "other"
        if kind == "action.completed":
            self._complete(data)
            return "step"
        if kind == "run.cancel_requested":
            self.cancel_requested = True
            return "other"
        if kind == "run.finished":
            self.finished = dict(data)
            position = _tile(data.get("position"))
            if position is not None:
                self.position = position
            return "finish"
        return "other"

    def _start(self, data: Mapping[str, Any]) -> None:
        spec = _mapping(data.get("spec"))
        maze = _mapping(spec.get("maze"))
        rows = maze.get("grid_data") or []
        self.grid = [bytes(int(code) & 0xFF for code in row) for row in rows]
        self.height = int(maze.get("height") or len(self.grid))
        self.width = int(maze.get("width") or (len(self.grid[0]) if self.grid else 0))
        self.maze_name = str(maze.get("name") or "")
        agent = _mapping(spec.get("agent"))
        self.agent = f"{agent.get('provider', '?')}:{agent.get('model', '?')}"
        self.start = _tile(spec.get("start"))
        self.position = self.start
        if self.start is not None:
            self.path.add(self.start)

    def _complete(self, data: Mapping[str, Any]) -> None:
        to = _tile(data.get("to"))
        self.actions = int(data.get("step") or self.actions + 1)
        self.turns = max(self.turns, int(data.get("turn") or 0))
        self.footsteps = int(data.get("footsteps") or 0)
        self.goal_seen = self.goal_seen or bool(data.get("goal_seen"))
        self.vision = set()
        for item in data.get("tiles_seen") or []:
            if isinstance(item, list | tuple) and len(item) == 3:
                tile = (int(item[0]), int(item[1]))
                self.seen[tile] = int(item[2])
                self.vision.add(tile)
        if to is not None:
            self.position = to
            self.path.add(to)
        self.recent.append(
            ActionLine(
                step=self.actions,
                turn=int(data.get("turn") or 0),
                action=str(data.get("action") or "?"),
                success=bool(data.get("success")),
                from_=_tile(data.get("from")),
                to=to,
                message=str(data.get("message") or ""),
                reasoning=self._reasoning,
            )
        )
        self._reasoning = None

    def tile(self, x: int, y: int) -> int | None:
        """The tile code at (x, y): from the maze if known, else as seen; None if unknown."""
        if 0 <= y < len(self.grid) and 0 <= x < len(self.grid[y]):
            return self.grid[y][x]
        return self.seen.get((x, y))

    def bounds(self) -> tuple[int, int]:
        """Width and height of the area to draw (the maze, or what was seen of it)."""
        if self.width and self.height:
            return self.width, self.height
        tiles = [*self.seen, *self.path]
        if not tiles:
            return 0, 0
        return max(x for x, _ in tiles) + 1, max(y for _, y in tiles) + 1


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _tile(value: Any) -> Tile | None:
    if isinstance(value, Mapping) and isinstance(value.get("x"), int):
        return int(value["x"]), int(value["y"])
    return None


# --- rendering (pure) -----------------------------------------------------------------------

#: Two characters per tile keep the maze roughly square in a terminal.
AGENT = ("@@", "bold white on red")
GOAL_CELL = ("◆◆", "bold yellow")
START = ("SS", "bold green")
WALL_IN_VIEW = ("██", "bright_white")
WALL_SEEN = ("██", "grey62")
WALL_UNSEEN = ("██", "grey30")
PATH = ("░░", "dark_orange3")
PATH_IN_VIEW = ("░░", "bold cyan")
EMPTY_IN_VIEW = ("··", "bold cyan")
EMPTY_SEEN = ("· ", "grey50")
EMPTY_UNSEEN = ("  ", "")
UNKNOWN = ("  ", "")


def window(size: int, center: int, span: int) -> tuple[int, int]:
    """``[first, end)`` of a ``span``-wide window over ``size`` tiles, centred on ``center``
    as far as the edges allow."""
    if span <= 0:
        return 0, 0
    if span >= size:
        return 0, size
    first = min(max(center - span // 2, 0), size - span)
    return first, first + span


def cell(view: RunView, x: int, y: int) -> tuple[str, str]:
    """The two characters and style of one tile."""
    tile = (x, y)
    if tile == view.position:
        return AGENT
    code = view.tile(x, y)
    if code == GOAL:
        return GOAL_CELL
    if tile == view.start:
        return START
    if code == WALL:
        if tile in view.vision:
            return WALL_IN_VIEW
        return WALL_SEEN if tile in view.seen else WALL_UNSEEN
    if code is None:
        return UNKNOWN
    if tile in view.path:
        return PATH_IN_VIEW if tile in view.vision else PATH
    if tile in view.vision:
        return EMPTY_IN_VIEW
    return EMPTY_SEEN if tile in view.seen else EMPTY_UNSEEN


def maze_window(view: RunView, cols: int, rows: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the tiles shown in ``cols`` x ``rows``, following the agent."""
    width, height = view.bounds()
    cx, cy = view.position or view.start or (width // 2, height // 2)
    x0, x1 = window(width, cx, cols)
    y0, y1 = window(height, cy, rows)
    return x0, y0, x1, y1


def render_maze(view: RunView, cols: int, rows: int) -> Text:
    """The maze around the agent: at most ``cols`` tiles (two characters each) by ``rows``."""
    x0, y0, x1, y1 = maze_window(view, cols, rows)
    text = Text(no_wrap=True, overflow="crop")
    if x1 <= x0 or y1 <= y0:
        text.append("waiting for the run to start…", style="dim")
        return text
    for y in range(y0, y1):
        if y > y0:
            text.append("\n")
        run_chars: list[str] = []
        run_style = ""
        for x in range(x0, x1):
            chars, style = cell(view, x, y)
            if style != run_style and run_chars:
                text.append("".join(run_chars), style=run_style or None)
                run_chars = []
            run_style = style
            run_chars.append(chars)
        if run_chars:
            text.append("".join(run_chars), style=run_style or None)
    return text


def _point(tile: Tile | None) -> str:
    return "?" if tile is None else f"({tile[0]}, {tile[1]})"


def outcome(view: RunView) -> tuple[str, str]:
    """Marker text and style of the run's state."""
    end = view.finished
    if end is None:
        return ("running (cancel requested)" if view.cancel_requested else "running"), "cyan"
    reason = str(end.get("stop_reason"))
    if end.get("success"):
        return f"✓ {reason}", "bold green"
    if reason == "failed":
        return f"⚠ {reason}", "bold yellow"
    return f"✗ {reason}", "bold red"


def render_info(view: RunView, recent: int, width: int, reasoning_lines: int = 2) -> RenderableType:
    """Totals, connection and the last ``recent`` actions with their reasoning."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    marker, style = outcome(view)
    table.add_row("run", Text(view.run_id))
    table.add_row("agent", Text(view.agent or "?"))
    width_, height_ = view.bounds()
    table.add_row("maze", Text(f"{view.maze_name or '?'} {width_}×{height_}"))
    table.add_row("status", Text(marker, style=style))
    table.add_row("position", Text(f"{_point(view.position)}  start {_point(view.start)}"))
    table.add_row(
        "totals",
        Text(
            f"{view.footsteps} footsteps, {view.actions} actions, {view.turns} turns"
            + (", goal seen" if view.goal_seen else "")
        ),
    )
    table.add_row(
        "tokens",
        Text(
            f"{view.input_tokens:,} in / {view.output_tokens:,} out, "
            f"{view.model_calls} model calls, ${view.cost_usd:.4f}"
        ),
    )
    table.add_row("feed", Text(f"{view.connection} (event {view.last_seq})"))
    parts: list[RenderableType] = [table]
    lines = list(view.recent)[-recent:] if recent > 0 else []
    if lines:
        parts.append(Text("last actions", style="bold"))
    for line in reversed(lines):
        head = Text(f"#{line.step} t{line.turn} ", style="dim", no_wrap=True, overflow="ellipsis")
        head.append(line.action, style="bold")
        head.append(" ✓ " if line.success else " ✗ ", style="green" if line.success else "red")
        head.append(f"{_point(line.from_)} → {_point(line.to)}")
        parts.append(head)
        if line.reasoning and reasoning_lines > 0:
            # Plain text: markup-like reasoning ("[bold]") is shown as written.
            reasoning = Text(" ".join(line.reasoning.split()), style="italic grey70")
            reasoning.truncate(max(10, width * reasoning_lines - 4), overflow="ellipsis")
            parts.append(Text("  ") + reasoning)
    return Group(*parts)


#: Lines of the info panel besides the actions: 8 table rows, 2 borders, 1 heading.
_INFO_LINES = 11


def render_screen(view: RunView, width: int, height: int) -> RenderableType:
    """The whole display for a terminal of ``width`` x ``height`` characters."""
    two_columns = width >= TWO_COLUMNS_FROM
    if two_columns:
        cols = max(4, (width - INFO_WIDTH - 5) // 2)
        rows = max(4, height - 3)
        recent = max(0, min(RECENT_ACTIONS, (height - _INFO_LINES - 1) // 3))
        info_width, reasoning_lines = INFO_WIDTH - 4, 2
    else:
        cols = max(4, (width - 4) // 2)
        recent = max(0, min(3, (height - 20) // 4))
        rows = max(4, height - _INFO_LINES - 2 * recent - 3)
        info_width, reasoning_lines = width - 4, 1
    x0, y0, x1, y1 = maze_window(view, cols, rows)
    maze_width, maze_height = view.bounds()
    title = Text(view.maze_name or "maze")
    if (x1 - x0, y1 - y0) != (maze_width, maze_height) and x1 > x0:
        title.append(f"  x {x0}–{x1 - 1}, y {y0}–{y1 - 1}", style="dim")
    maze = Panel(render_maze(view, cols, rows), title=title, expand=False, padding=(0, 0))
    info = Panel(
        render_info(view, recent, info_width, reasoning_lines),
        title=Text(f"oriole watch {view.run_id}"),
        width=INFO_WIDTH if two_columns else None,
    )
    if not two_columns:
        return Group(maze, info)
    grid = Table.grid(padding=(0, 1))
    grid.add_row(maze, info)
    return grid


def summary_text(view: RunView) -> Text:
    """One paragraph on how the run ended (or where it stands)."""
    marker, style = outcome(view)
    text = Text(f"run {view.run_id}: ")
    text.append(marker, style=style)
    end = view.finished
    if end is None:
        text.append(f" — {view.footsteps} footsteps, {view.actions} actions so far")
        return text
    detail = end.get("detail")
    if detail:
        text.append(f" — {detail}")
    error = end.get("error")
    if isinstance(error, Mapping):
        text.append(f" ({error.get('error_class')}: {error.get('message')})", style="yellow")
    text.append(
        f"\n{end.get('footsteps', view.footsteps)} footsteps, "
        f"{end.get('actions', view.actions)} actions, {end.get('turns', view.turns)} turns, "
        f"{end.get('model_calls', view.model_calls)} model calls, "
        f"{int(end.get('input_tokens') or 0):,} in / {int(end.get('output_tokens') or 0):,} "
        f"out tokens, ${float(end.get('cost_usd') or 0):.4f}, "
        f"{float(end.get('duration_seconds') or 0):.1f} s; ended at "
        f"{_point(_tile(end.get('position')) or view.position)}"
    )
    return text


# --- where the gateway is -------------------------------------------------------------------


def gateway_base_url(current: Settings, explicit: str | None = None) -> str:
    """``--url``, else the running stack's gateway, else the configured host and port."""
    if explicit:
        return explicit.rstrip("/")
    try:
        info = read_stack(current.home)
    except NoStackError:
        info = None  # a stale stack file: fall back to the configuration
    if info is not None and info.gateway_url:
        return info.gateway_url.rstrip("/")
    host = current.gateway_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{current.gateway_port}"


def run_feed_url(base: str, run_id: str, from_seq: int) -> str:
    """``ws(s)://.../ws/runs/{run_id}?from_seq=N`` for a gateway base URL."""
    parts = urlsplit(base if "://" in base else f"http://{base}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise WatchError(f"the gateway URL must be http(s)://HOST:PORT, got {base!r}")
    path = f"{parts.path.rstrip('/')}/ws/runs/{quote(run_id, safe='')}"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"from_seq": from_seq}), ""))


# --- following the feed ---------------------------------------------------------------------


async def follow(
    view: RunView,
    base_url: str,
    token: str | None,
    on_change: Callable[[], None] = lambda: None,
    *,
    give_up_after: float = RECONNECT_GIVE_UP,
    open_timeout: float = OPEN_TIMEOUT,
) -> None:
    """Receive the run's events into ``view`` until it has finished.

    Reconnects with ``from_seq`` = the last seq received after ``lagging`` or a drop;
    raises :class:`WatchError` for an unknown run, a refused token, or a gateway that cannot
    be reached (at first, or for ``give_up_after`` seconds after a drop).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    loop = asyncio.get_running_loop()
    connected_once = False
    failing_since: float | None = None
    attempt = 0
    while True:
        uri = run_feed_url(base_url, view.run_id, view.last_seq)
        close_code: int | None = None
        detail: str | None = None
        lagging = False
        try:
            async with connect(
                uri,
                additional_headers=headers,
                compression=None,
                max_size=None,
                open_timeout=open_timeout,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=5,
            ) as ws:
                connected_once = True
                failing_since = None
                attempt = 0
                view.connection = "loading"
                on_change()
                try:
                    async for raw in ws:
                        frame = json.loads(raw)
                        kind = frame.get("kind") if isinstance(frame, dict) else None
                        if kind == "event":
                            if view.apply(frame.get("event") or {}) == "gap":
                                view.connection = "missing events; resuming"
                                break
                        elif kind == "caught_up":
                            view.connection = "live"
                        elif kind == "finished":
                            view.connection = "finished"
                        elif kind == "lagging":
                            lagging = True
                            view.connection = "lagging; resuming"
                        elif kind == "error":
                            detail = str(frame.get("detail") or "")
                        on_change()
                except ConnectionClosed:
                    pass
                close_code = ws.close_code
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                hint = "" if token else f" (give one with --token or ${TOKEN_ENV})"
                refused = "token refused" if token else "a token is needed"
                raise WatchError(
                    f"the gateway at {base_url} refused the connection: HTTP {status}, "
                    f"{refused}{hint}"
                ) from None
            if not connected_once:
                raise WatchError(
                    f"the gateway at {base_url} answered HTTP {status}; is it an Oriole gateway?"
                ) from None
        except InvalidURI as exc:
            raise WatchError(f"bad gateway URL {base_url!r}: {exc}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            if not connected_once:
                reason = str(exc) or type(exc).__name__
                raise WatchError(
                    f"cannot reach the gateway at {base_url} ({reason}); is `oriole up` "
                    "running? (or give --url)"
                ) from None
        if view.finished is not None:
            view.connection = "finished"
            on_change()
            return
        if close_code == 4004:
            raise WatchError(detail or f"unknown run {view.run_id!r}")
        if close_code == 4400:
            raise WatchError(f"the gateway refused the request: {detail or 'bad query'}")
        if lagging or close_code == 4008:
            continue  # resume at once from the last seq received
        now = loop.time()
        if failing_since is None:
            failing_since = now
        elif now - failing_since > give_up_after:
            raise WatchError(
                f"lost the gateway at {base_url} and could not reconnect for {give_up_after:.0f} s"
            )
        delay = min(MAX_BACKOFF, 0.5 * 2**attempt)
        attempt += 1
        view.connection = f"connection lost; retrying in {delay:.0f} s"
        on_change()
        await asyncio.sleep(delay)


async def watch_async(
    view: RunView,
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
        return render_screen(view, width, height)

    # Refreshed from this task only (no auto-refresh thread reading the view meanwhile).
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
            await follow(view, base_url, token, changed.set, give_up_after=give_up_after)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    out.print(screen())
    out.print(summary_text(view))


def watch(
    run_id: Annotated[str, typer.Argument(help="The run to watch.")],
    from_seq: Annotated[
        int,
        typer.Option("--from-seq", min=0, help="Start after this event (0: the whole run)."),
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
    view = RunView(run_id=run_id, last_seq=from_seq)
    try:
        asyncio.run(watch_async(view, base, token, console))
    except WatchError as exc:
        err_console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print(Text("stopped watching (the run goes on)"))
        raise typer.Exit(130) from None
