"""Event logs made in memory (the real rules, a manual clock) and table snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, ModelOptions, RunLimits
from oriole.intents import ActionType, ModelCall
from oriole.local_run import LocalRun, ManualClock
from oriole.maze import Maze

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def small_maze(seed: int = 3) -> Maze:
    return generators.generate("backtracker", 21, 21, seed=seed, name=f"proj-{seed}")


async def agent_run(
    run_id: str, model: str = "frontier", *, seed: int = 1, maze: Maze | None = None, **limits: Any
) -> list[RunEvent]:
    """A complete run of a built-in agent, one simulated second per action."""
    maze = maze or small_maze()
    request = ExperimentStart(
        run_id=run_id,
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        limits=RunLimits(**({"max_footsteps": 300} | limits)),
        comment="projection test",
        labels={"batch": "p1"},
    )
    clock = ManualClock(T0)
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(1)
        run.send(decision.to_intent(run_id, run.state.seq, run.state.turn))
    return run.events


def llm_like_run(run_id: str, *, temperature: float = 0.0) -> list[RunEvent]:
    """A hand-driven run with model calls: two calls of two actions each, then a failure."""
    maze = small_maze()
    request = ExperimentStart(
        run_id=run_id,
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(
            provider="builtin",
            model="frontier",
            options=ModelOptions(temperature=temperature, num_ctx=2048),
        ),
        limits=RunLimits(max_footsteps=100),
    )
    clock = ManualClock(T0)
    run = LocalRun(request, maze, clock=clock)
    for turn, (tokens_in, tokens_out) in enumerate([(120, 30), (150, 45)], start=1):
        call = ModelCall(
            call_id=f"call-{turn}",
            provider="ollama",
            model="qwen2.5:7b",
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=0.0,
            duration_ms=900.0,
            prompt_eval_ms=100.0,
            eval_ms=800.0,
            tokens_per_second=50.0,
            done_reason="stop",
        )
        clock.advance(2)
        run.act(ActionType.RECALL, turn=turn, model_call=call, depth=5, reasoning="<b>where</b>")
        clock.advance(1)
        run.act(ActionType.NO_TOOL_CALL, turn=turn, assistant_message="thinking...")
    clock.advance(1)
    failing = ModelCall(
        call_id="call-3", provider="ollama", model="qwen2.5:7b", input_tokens=7, output_tokens=0
    )
    run.fail("ReadTimeout", "no answer", model_call=failing)
    return run.events


TABLES = {
    "run_events": "run_id, seq",
    "mazes": "content_hash",
    "experiments": "run_id",
    "agent_actions": "run_id, step",
    "model_calls": "run_id, seq",
}


async def snapshot(conn: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in key order."""
    result: dict[str, list[dict[str, Any]]] = {}
    for table, order in TABLES.items():
        rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")
        result[table] = [dict(row) for row in rows]
    return result
