"""Admitting an experiment-start request: every check a start must pass, with every problem.

Pure: the maze catalogue is passed in as a look-up function. Used by the workers (a failed
admission becomes a rejection event) and by `oriole run` (which refuses before publishing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from oriole.agents.builtin import check_agent_spec
from oriole.errors import ValidationError
from oriole.experiment import ExperimentStart, MazeData
from oriole.maze import Maze
from oriole.rules import resolve_start
from oriole.schema_base import field_problems

#: Providers this version can run; the others are accepted by the schema for forward
#: compatibility but refused here with a clear reason.
AVAILABLE_PROVIDERS = frozenset({"builtin"})


@dataclass(frozen=True, slots=True)
class Admitted:
    request: ExperimentStart  # with the maze embedded, never only named
    maze: Maze
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    run_id: str | None
    problems: tuple[tuple[str, str], ...]


def admit(data: Mapping[str, Any], find_maze: Callable[[str], Maze]) -> Admitted | Rejected:
    """Validate a decoded start event; resolve a named maze through ``find_maze``."""
    requested_id = data.get("run_id")
    run_id = requested_id if isinstance(requested_id, str) and requested_id else None
    try:
        request = ExperimentStart.model_validate(data)
    except pydantic.ValidationError as exc:
        return Rejected(run_id, tuple(field_problems(exc)))
    problems: list[tuple[str, str]] = []
    maze: Maze | None = None
    if request.maze is not None:
        maze = request.maze.to_maze()
    elif request.maze_name is not None:
        try:
            maze = find_maze(request.maze_name)
        except ValidationError as exc:
            problems.append(("maze_name", exc.reason))
    try:
        check_agent_spec(request.agent)
    except ValidationError as exc:
        problems.append((exc.field, exc.reason))
    if request.agent.provider not in AVAILABLE_PROVIDERS:
        problems.append(
            (
                "agent.provider",
                f"provider {request.agent.provider!r} is not available in this version; "
                f"available: {', '.join(sorted(AVAILABLE_PROVIDERS))}",
            )
        )
    warnings: tuple[str, ...] = ()
    if maze is not None:
        try:
            _, found = resolve_start(maze, request.start, request.rules.vision_range)
            warnings = tuple(found)
        except ValidationError as exc:
            problems.append((exc.field, exc.reason))
    if problems or maze is None:
        return Rejected(request.run_id, tuple(problems))
    if request.maze is None:
        request = request.model_copy(update={"maze": MazeData.from_maze(maze), "maze_name": None})
    return Admitted(request, maze, warnings)
