"""Forks made in memory for the lineage and viewer tests: a parent played to its end by a
built-in agent, and forks of it admitted against its log as the maze processor admits them
(`find_parent`), then played by their own built-in agents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from oriole.admission import Admitted, admit
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.errors import MazeError
from oriole.events import RunEvent
from oriole.experiment import ExperimentStart
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def no_maze(name: str) -> Maze:
    raise MazeError("maze_name", f"no maze named {name!r}")


def admitted_fork(
    run_id: str,
    parent: Sequence[RunEvent],
    step: int,
    agent: dict[str, Any],
    *,
    requested_at: datetime = T0,
    **fields: Any,
) -> Admitted:
    """A fork of ``parent`` (its whole log) after ``step``, admitted; fails if refused."""
    document: dict[str, Any] = {
        "run_id": run_id,
        "requested_at": requested_at.isoformat(),
        "fork_of": {"run_id": parent[0].run_id, "after_step": step},
        "agent": agent,
        **fields,
    }
    logs = {parent[0].run_id: parent}
    verdict = admit(document, no_maze, find_parent=lambda parent_id: logs.get(parent_id, []))
    assert isinstance(verdict, Admitted), verdict
    return verdict


async def played(
    request: ExperimentStart,
    maze: Maze,
    admitted: Admitted | None = None,
    *,
    clock: ManualClock | None = None,
    ids: int = 0,
    seconds_per_action: float = 0.5,
) -> list[RunEvent]:
    """The run's log when its built-in agent plays it to the end, as the agent runner does."""
    clock = clock or ManualClock(T0)
    run = LocalRun(
        request,
        maze,
        clock=clock,
        new_id=counting_ids(ids),
        inherited=None if admitted is None else admitted.inherited,
    )
    agent = create_builtin(request.agent)
    while run.state.is_active:
        clock.advance(seconds_per_action)
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))
    return run.events


async def played_fork(
    admitted: Admitted, *, clock: ManualClock | None = None, ids: int = 0
) -> list[RunEvent]:
    """An admitted fork played to its end by its built-in agent."""
    return await played(admitted.request, admitted.maze, admitted, clock=clock, ids=ids)
