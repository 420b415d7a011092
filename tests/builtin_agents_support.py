"""What the built-in agent tests share: runs with the real rules on a manual clock, playing
an agent through one (checking it never aims at a known wall), and hand-built observations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from oriole.agents.base import Agent, Decision, Observation
from oriole.experiment import AgentSpec, ExperimentStart, GameRules, MazeData, RunLimits
from oriole.geometry import Position, Tile
from oriole.intents import ActionType
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.schema_base import Point

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WALL = int(Tile.WALL)


def new_run(
    maze: Maze,
    model: str,
    *,
    seed: int | None = None,
    start: tuple[int, int] | None = None,
    vision_range: int = 3,
    goal_rule: Literal["seen", "reached"] = "seen",
    max_footsteps: int = 2000,
    max_actions: int | None = None,
) -> LocalRun:
    request = ExperimentStart(
        run_id="run-builtin",
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        start=None if start is None else Point(x=start[0], y=start[1]),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        rules=GameRules(vision_range=vision_range),
        limits=RunLimits(
            max_footsteps=max_footsteps,
            max_actions=max_actions if max_actions is not None else 2 * max_footsteps,
            goal_rule=goal_rule,
        ),
    )
    return LocalRun(request, maze, clock=ManualClock(T0), new_id=counting_ids())


def send(run: LocalRun, decision: Decision) -> None:
    """Pass a decision to the run exactly as a runner would turn it into an intent."""
    run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))


async def play(agent: Agent, run: LocalRun, *, avoid_walls: bool = True) -> list[Decision]:
    """Decide and act until the run ends, or until the agent has no move left to make.

    With ``avoid_walls`` every move is checked, before it is sent, not to aim at a tile the
    agent knows to be a wall (seen as one, or refused before).
    """
    decisions: list[Decision] = []
    while not run.state.is_finished:
        observation = Observation.from_state(run.state)
        decision = await agent.decide(observation, run.state.actions)
        assert decision.new_turn and decision.model_call is None
        assert decision.reasoning
        direction = decision.action.direction
        if avoid_walls and direction is not None:
            target = observation.position.step(direction)
            assert observation.known.get(target) != WALL, (decision, target)
            refused = {(r.from_, r.action) for r in run.state.actions if not r.success}
            assert (observation.position, decision.action) not in refused, decision
        decisions.append(decision)
        send(run, decision)
        if decision.action is ActionType.NO_TOOL_CALL:
            break
    return decisions


def observe(
    known: dict[Position, int],
    position: Position,
    width: int,
    height: int,
    *,
    model: str = "frontier",
    seed: int | None = None,
    basis_seq: int = 1,
) -> Observation:
    """An observation built by hand, for situations a run cannot easily reach."""
    return Observation(
        run_id="run-hand",
        basis_seq=basis_seq,
        turn=0,
        position=position,
        width=width,
        height=height,
        vision=(),
        known=known,
        footsteps=0,
        actions=0,
        last_result=None,
        rules=GameRules(),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        prompt=None,
    )


def known_of(maze: Maze) -> dict[Position, int]:
    return {Position(x, y): code for y, row in enumerate(maze.rows) for x, code in enumerate(row)}
