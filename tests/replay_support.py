"""What the replay verification tests share: runs on a corridor or any maze played by a
built-in agent on a manual clock, and the check that a log re-derives identically."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import RunEvent, StopReason, dump_run_event, parse_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.intents import ActionType, ModelCall
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.replay import VerifyReport, verify_run
from oriole.schema_base import Point
from tests.support import maze_from_text

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RUN_ID = "run-replay"

CORRIDOR = maze_from_text(
    """
    ###########
    #.........#
    #.#######.#
    #.#.....#G#
    ###########
    """,
    name="corridor",
)

CALL = ModelCall(
    call_id="call-1",
    provider="ollama",
    model="qwen2.5:7b",
    input_tokens=120,
    output_tokens=30,
    cost_usd=0.002,
    duration_ms=850.0,
)


def new_run(
    maze: Maze,
    model: str = "frontier",
    *,
    seed: int | None = None,
    start: tuple[int, int] | None = None,
    **limits: Any,
) -> tuple[LocalRun, ManualClock]:
    clock = ManualClock(T0)
    request = ExperimentStart(
        run_id=RUN_ID,
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        start=None if start is None else Point(x=start[0], y=start[1]),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        limits=RunLimits(**limits),
    )
    return LocalRun(request, maze, clock=clock, new_id=counting_ids()), clock


def play(run: LocalRun, clock: ManualClock, *, decisions: int = 10_000) -> None:
    """Let the run's built-in agent play, half a second per decision, until the run ends."""
    spec, _ = run.state.require_spec()
    agent = create_builtin(spec.agent)
    for _ in range(decisions):
        if run.state.is_finished:
            return
        decision = agent.choose(Observation.from_state(run.state), run.state.actions)
        clock.advance(0.5)
        run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))
        if decision.action is ActionType.NO_TOOL_CALL:
            return


def stored(events: list[RunEvent]) -> list[RunEvent]:
    """The log as read back from storage (JSON round trip)."""
    return [parse_run_event(dump_run_event(event)) for event in events]


def assert_identical(events: list[RunEvent], *, finished: bool = True) -> VerifyReport:
    for log in (events, stored(events)):
        report = verify_run(log)
        assert report.ok, report.render()
        assert report.differences == ()
        assert report.events == len(events)
        assert report.finished is finished
        assert "identical" in report.render()
    return report


def stop_reason(run: LocalRun) -> StopReason:
    assert run.state.finished is not None
    return run.state.finished.stop_reason
