"""End to end without a broker: a planned batch of real built-in agents (frontier vs random)
played with the real rules (`oriole.local_run`), decided by the pure batch rules, stops
`conclusive` long before its grid is done."""

from __future__ import annotations

import pytest

from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.batch_events import BatchStopReason
from oriole.batch_plan import BatchPlan, plan_batch
from oriole.batch_rules import launches, run_ended
from oriole.batch_state import fold_batch
from oriole.events import RunFinished, RunFinishedPayload
from oriole.experiment import ExperimentStart
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from tests.test_batch_sequential_rules import BATCH, NOW, finished, start


async def play(request: ExperimentStart) -> RunFinishedPayload:
    """One run of a built-in agent to its end, as a runner would drive it."""
    assert request.maze is not None
    run = LocalRun(request, request.maze.to_maze(), clock=ManualClock(NOW), new_id=counting_ids())
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))
    last = run.events[-1]
    assert isinstance(last, RunFinished)
    return last.payload


def no_library(name: str) -> Maze:
    raise KeyError(name)


@pytest.mark.asyncio
async def test_frontier_against_random_is_conclusive_before_the_grid_is_done() -> None:
    spec = {
        "name": "frontier vs random",
        "agents": ["frontier", "random"],
        "mazes": [{"generator": "backtracker", "width": 21, "height": 21, "seeds": [1, 2, 3, 4]}],
        "starts": {"random": 1, "seed": 3},
        "repetitions": 10,
        "limits": {"max_footsteps": 200, "max_actions": 400},
        "caps": {"max_in_flight": 4},
        "sequential": {},
    }
    planned = plan_batch(spec, BATCH, find_maze=no_library, prices=None)
    assert isinstance(planned, BatchPlan), planned
    state, log = start(planned)
    log += launches(state, planned.policy, planned.slots, NOW)[0]
    while state.active:
        run_id, planned_id = next(iter(state.in_flight.items()))
        request = planned.requests[planned_id].model_copy(update={"run_id": run_id})
        notice = finished(run_id, (await play(request)).stop_reason)
        log += run_ended(state, planned.policy, notice, NOW)
        log += launches(state, planned.policy, planned.slots, NOW)[0]
    end = state.finished
    assert end is not None and end.stop_reason == BatchStopReason.CONCLUSIVE, end
    assert end.evidence is not None and end.evidence.better == "frontier"
    assert end.detail.startswith("conclusive after ")
    assert end.counts.launched < 80 / 2, end.counts
    assert fold_batch(BATCH, log).finished == end
