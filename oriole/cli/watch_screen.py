"""What `oriole watch` draws, from a :class:`~oriole.cli.watch_feed.WatchedRun` (pure).

The maze around the agent (a window that follows it on big mazes) is drawn by
:func:`oriole.cli.render.render_maze`, the renderer of `oriole mazes show`; the info panel
shows the run's totals from the fold's tally, the feed's state and the last actions with
their reasoning. Functions take the run and sizes and return rich renderables, so they are
tested without a terminal.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from oriole.cli.render import Area, area_around, render_maze
from oriole.cli.watch_feed import RECENT_ACTIONS, WatchedRun
from oriole.geometry import Position

#: Width of the info column when the terminal is wide enough for two columns.
INFO_WIDTH = 52
TWO_COLUMNS_FROM = 110


def in_view(run: WatchedRun) -> set[Position]:
    """The tiles the agent sees now: those of its last action, or (before its first action)
    what it saw from the start, which is all the fold has seen so far."""
    state = run.state
    if state.actions:
        return {Position(x, y) for x, y, _ in state.actions[-1].tiles}
    return set(state.seen)


def maze_area(run: WatchedRun, cols: int, rows: int) -> Area | None:
    """The tiles shown in ``cols`` x ``rows`` around the agent; None before the run started."""
    maze = run.state.maze
    if maze is None:
        return None
    return area_around(maze, run.state.position, cols, rows)


def render_run_maze(run: WatchedRun, cols: int, rows: int) -> Text:
    """The maze around the agent: at most ``cols`` tiles (two characters each) by ``rows``."""
    state = run.state
    area = maze_area(run, cols, rows)
    if state.maze is None or state.spec is None or area is None:
        return Text("waiting for the run to start…", style="dim")
    text, _ = render_maze(
        state.maze,
        start=state.spec.start.position(),
        path=state.visits.keys(),
        seen=state.seen.keys(),
        in_view=in_view(run),
        agent=state.position,
        area=area,
        max_columns=2 * cols,
    )
    text.right_crop(1)  # the last row's newline
    text.no_wrap = True
    text.overflow = "crop"
    return text


def _point(tile: Position | None) -> str:
    return "?" if tile is None else f"({tile.x}, {tile.y})"


def outcome(run: WatchedRun) -> tuple[str, str]:
    """Marker text and style of the run's state."""
    state = run.state
    end = state.finished
    if end is None:
        return ("running (cancel requested)" if state.cancel_requested else "running"), "cyan"
    reason = end.stop_reason.value
    if end.success:
        return f"✓ {reason}", "bold green"
    if reason == "failed":
        return f"⚠ {reason}", "bold yellow"
    return f"✗ {reason}", "bold red"


def render_info(
    run: WatchedRun, recent: int, width: int, reasoning_lines: int = 2
) -> RenderableType:
    """Totals, connection and the last ``recent`` actions with their reasoning."""
    state, tally = run.state, run.state.tally
    spec, maze = state.spec, state.maze
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    marker, style = outcome(run)
    table.add_row("run", Text(run.run_id))
    table.add_row(
        "agent", Text("?" if spec is None else f"{spec.agent.provider}:{spec.agent.model}")
    )
    table.add_row(
        "maze",
        Text("? 0×0" if maze is None else f"{maze.name or '?'} {maze.width}×{maze.height}"),
    )
    table.add_row("status", Text(marker, style=style))
    start = None if spec is None else spec.start.position()
    position = state.position if state.started else None
    table.add_row("position", Text(f"{_point(position)}  start {_point(start)}"))
    table.add_row(
        "totals",
        Text(
            f"{tally.footsteps} footsteps, {tally.actions} actions, {state.turn} turns"
            + (", goal seen" if tally.goal_seen else "")
        ),
    )
    table.add_row(
        "tokens",
        Text(
            f"{tally.input_tokens:,} in / {tally.output_tokens:,} out, "
            f"{tally.model_calls} model calls, ${tally.cost_usd:.4f}"
        ),
    )
    table.add_row("feed", Text(f"{run.connection} (event {state.seq})"))
    parts: list[RenderableType] = [table]
    lines = run.recent()[-recent:] if recent > 0 else []
    if lines:
        parts.append(Text("last actions", style="bold"))
    for line in reversed(lines):
        record = line.record
        head = Text(
            f"#{record.step} t{record.turn} ", style="dim", no_wrap=True, overflow="ellipsis"
        )
        head.append(record.action.value, style="bold")
        head.append(" ✓ " if record.success else " ✗ ", style="green" if record.success else "red")
        head.append(f"{_point(record.from_)} → {_point(record.to)}")
        parts.append(head)
        if line.reasoning and reasoning_lines > 0:
            # Plain text: markup-like reasoning ("[bold]") is shown as written.
            reasoning = Text(" ".join(line.reasoning.split()), style="italic grey70")
            reasoning.truncate(max(10, width * reasoning_lines - 4), overflow="ellipsis")
            parts.append(Text("  ") + reasoning)
    return Group(*parts)


#: Lines of the info panel besides the actions: 8 table rows, 2 borders, 1 heading.
_INFO_LINES = 11


def render_screen(run: WatchedRun, width: int, height: int) -> RenderableType:
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
    maze = run.state.maze
    title = Text(maze.name if maze is not None and maze.name else "maze")
    area = maze_area(run, cols, rows)
    if maze is not None and area is not None and area != Area.whole(maze) and area.width:
        title.append(f"  x {area.x0}–{area.x1 - 1}, y {area.y0}–{area.y1 - 1}", style="dim")
    maze_panel = Panel(render_run_maze(run, cols, rows), title=title, expand=False, padding=(0, 0))
    info = Panel(
        render_info(run, recent, info_width, reasoning_lines),
        title=Text(f"oriole watch {run.run_id}"),
        width=INFO_WIDTH if two_columns else None,
    )
    if not two_columns:
        return Group(maze_panel, info)
    grid = Table.grid(padding=(0, 1))
    grid.add_row(maze_panel, info)
    return grid


def summary_text(run: WatchedRun) -> Text:
    """One paragraph on how the run ended (or where it stands)."""
    state = run.state
    marker, style = outcome(run)
    text = Text(f"run {run.run_id}: ")
    text.append(marker, style=style)
    end = state.finished
    if end is None:
        text.append(f" — {state.tally.footsteps} footsteps, {state.tally.actions} actions so far")
        return text
    if end.detail:
        text.append(f" — {end.detail}")
    if end.error is not None:
        text.append(f" ({end.error.error_class}: {end.error.message})", style="yellow")
    text.append(
        f"\n{end.footsteps} footsteps, {end.actions} actions, {end.turns} turns, "
        f"{end.model_calls} model calls, {end.input_tokens:,} in / {end.output_tokens:,} "
        f"out tokens, ${end.cost_usd:.4f}, {end.duration_seconds:.1f} s; ended at "
        f"{_point(end.position.position())}"
    )
    return text
