"""What the `oriole watch` tests share: a corridor run, its events as watch receives them
(through the gateway's frames) folded into a WatchedRun, and reading what was drawn."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.text import Text

from gateway.frames import event_frame
from oriole.cli.watch_feed import WatchedRun, read_frame
from oriole.events import RunEvent, dump_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData
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
