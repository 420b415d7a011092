"""Pure-core throughput: vision calls/s on a 1000x1000 maze, rules and fold events/s.

:func:`play_local` (a built-in agent playing one run in process, no Kafka) is shared with the
projections suite (its event logs) and the backbone suite (its no-Kafka ceiling).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.intents import ActionType
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.rng import SeededRandom
from oriole.run_state import fold
from oriole.schema_base import Point

MOVES = [ActionType.MOVE_NORTH, ActionType.MOVE_SOUTH, ActionType.MOVE_EAST, ActionType.MOVE_WEST]


async def play_local(
    request: ExperimentStart, maze: Maze, clock: ManualClock, tick_seconds: float = 0.0
) -> list[RunEvent]:
    """The run's events when its built-in agent plays it to the end in process, as the agent
    runner drives it (observation, decision, intent), ``tick_seconds`` of clock per step."""
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(tick_seconds)
        run.send(decision.to_intent(request.run_id, run.state.seq, run.state.turn))
    return run.events


def _timed(work: Any, minimum_seconds: float = 1.0) -> tuple[int, float]:
    """Repeat ``work()`` (which returns a count) until ``minimum_seconds`` have passed."""
    count = 0
    start = time.perf_counter()
    while True:
        count += work()
        elapsed = time.perf_counter() - start
        if elapsed >= minimum_seconds:
            return count, elapsed


def bench_vision() -> dict[str, Any]:
    maze = generators.generate("backtracker", 1000, 1000, seed=1)
    open_tiles = maze.open_tiles()
    rng = SeededRandom(7)
    sample = [open_tiles[rng.below(len(open_tiles))] for _ in range(20_000)]

    def run(see_through: bool) -> int:
        vision = maze.vision
        for x, y in sample:
            vision(x, y, 3, see_through)
        return len(sample)

    calls, seconds = _timed(lambda: run(False))
    square_calls, square_seconds = _timed(lambda: run(True))
    return {
        "maze": f"{maze.width}x{maze.height} backtracker",
        "vision_calls_per_s": round(calls / seconds),
        "see_through_vision_calls_per_s": round(square_calls / square_seconds),
    }


def bench_run_core(actions: int = 20_000) -> dict[str, Any]:
    maze = generators.generate("open-field", 200, 200, seed=3)
    request = ExperimentStart(
        run_id="bench",
        maze=MazeData.from_maze(maze),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model="random"),
        limits=RunLimits(max_footsteps=None, max_actions=None, max_duration_seconds=None),
    )
    rng = SeededRandom(11)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    started = time.perf_counter()
    run = LocalRun(request, maze, clock=clock, new_id=counting_ids())
    for turn in range(actions):
        if not run.state.is_active:
            break
        run.act(MOVES[rng.below(4)], turn=turn // 10 + 1, reasoning="bench")
    decide_seconds = time.perf_counter() - started
    events = run.events
    folds, fold_seconds = _timed(lambda: len(fold("bench", events).actions) and len(events))
    return {
        "intents": actions,
        "intents_per_s_decide_and_fold": round(actions / decide_seconds),
        "events": len(events),
        "fold_events_per_s": round(folds / fold_seconds),
    }


def main() -> dict[str, Any]:
    return {"vision": bench_vision(), "run_core": bench_run_core()}
