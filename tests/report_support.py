"""A real batch of built-in agents, run in memory and written through the projections.

The batch is planned by the core (`plan_batch`), launched and accounted by the scheduler's
own rules (`batch_rules`), each run played by `LocalRun` with the real built-in agent, and
every run and batch event stored by the projector's code — the database ends up as a stack
would leave it, without a broker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.batch_events import (
    BatchEvent,
    BatchRunEnded,
    BatchStarted,
    BatchStartedPayload,
    PlannedRunRef,
)
from oriole.batch_plan import BatchPlan, plan_batch
from oriole.batch_rules import launches, run_ended
from oriole.batch_state import BatchState
from oriole.events import RunEvent, RunFinished
from oriole.local_run import LocalRun, ManualClock
from oriole.maze import Maze
from projections.store import store_batch
from tests.projection_support import T0

#: Two built-in agents on two generated mazes, two starts each: 2 arms x 4 places x reps.
SPEC: dict[str, Any] = {
    "name": "report test",
    "agents": ["frontier", "random"],
    "mazes": [{"generator": "backtracker", "width": 15, "height": 15, "seeds": [1, 2]}],
    "starts": {"random": 2, "seed": 7},
    "repetitions": 3,
    "limits": {"max_footsteps": 120},
    "labels": {"project": "reports"},
    "caps": {"max_in_flight": 3},
}


def _no_named_maze(name: str) -> Maze:
    raise AssertionError(f"the test batch names no library maze ({name})")


async def _play(plan: BatchPlan, run_id: str, planned: str, clock: ManualClock) -> list[RunEvent]:
    request = plan.requests[planned].model_copy(update={"run_id": run_id})
    assert request.maze is not None
    maze = request.maze.to_maze()
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(0.5)
        run.send(decision.to_intent(run_id, run.state.seq, run.state.turn))
    return run.events


async def archive_local_batch(
    conn: Any, batch_id: str, spec: dict[str, Any] | None = None
) -> tuple[BatchPlan, list[RunEvent]]:
    """Run ``spec`` (default `SPEC`) to the end and store it; returns the plan and every
    run event stored."""
    plan = plan_batch(spec or SPEC, batch_id, find_maze=_no_named_maze, prices=None)
    assert isinstance(plan, BatchPlan), plan
    clock = ManualClock(T0)
    state = BatchState(batch_id)
    started = BatchStarted(
        batch_id=batch_id,
        seq=1,
        time=clock(),
        payload=BatchStartedPayload(
            name=plan.name,
            labels=plan.labels,
            spec=spec or SPEC,
            runs=[PlannedRunRef(run_id=r, cell=c, repetition=n) for r, c, n in plan.order],
            cells=plan.cells,
        ),
    )
    state.apply(started)
    batch_events: list[BatchEvent] = [started]
    run_events: list[RunEvent] = []
    while state.active:
        decided, chosen = launches(state, plan.policy, plan.slots, clock())
        batch_events += decided
        for launch in chosen:
            events = await _play(plan, launch.run_id, launch.planned_run_id, clock)
            run_events += events
            finished = events[-1]
            assert isinstance(finished, RunFinished)
            notice = BatchRunEnded(
                batch_id=batch_id, run_id=launch.run_id, finished=finished.payload
            )
            batch_events += run_ended(state, plan.policy, notice, clock())
        clock.advance(timedelta(seconds=1).total_seconds())
    await store_batch(conn, run_events, batch_events)
    return plan, run_events
