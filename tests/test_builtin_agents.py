"""The built-in baseline agents, played through whole runs with the real rules and fold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oriole.agents.base import Agent, Decision, Observation
from oriole.agents.builtin import (
    BUILTIN_AGENTS,
    FrontierAgent,
    RandomAgent,
    WallFollowerAgent,
    _KnownMap,
    check_agent_spec,
    create_builtin,
)
from oriole.analysis import reachable, steps_to_see_goal
from oriole.errors import ValidationError
from oriole.events import StopReason
from oriole.experiment import AgentSpec, ExperimentStart, GameRules, MazeData, RunLimits
from oriole.generators import generate
from oriole.geometry import Position, Tile
from oriole.intents import ActionType
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.memory import ActionRecord
from oriole.rng import SeededRandom
from oriole.run_state import fold
from oriole.schema_base import Point
from tests.support import maze_from_text, random_mazes, reference_maze

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WALL = int(Tile.WALL)

#: Footsteps the frontier agent needs on Oriole's maze 1 from (2,2), vision 3 (optimum: 99).
#: Pinned because the agent is deterministic: a change here changes the published baseline.
FRONTIER_FOOTSTEPS_MAZE_1 = 170


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


# --- frontier ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_frontier_sees_the_goal_of_reference_maze_1() -> None:
    maze = reference_maze("01_sparse_maze")
    run = new_run(maze, "frontier", start=(2, 2), max_footsteps=2000)
    await play(FrontierAgent(), run)
    finished = run.state.finished
    assert finished is not None
    assert finished.stop_reason is StopReason.GOAL_SEEN
    assert run.state.tally.failed_moves == 0
    assert steps_to_see_goal(maze, (2, 2)) == 99
    assert run.state.tally.footsteps == FRONTIER_FOOTSTEPS_MAZE_1


FAMILY_CASES = [
    ("backtracker", 25, 25, {}),
    ("backtracker", 31, 19, {"density": 0.5}),
    ("open-field", 30, 30, {"wall_fraction": 0.3}),
    ("rooms", 40, 30, {}),
    ("pillars", 27, 27, {"gap_probability": 0.3}),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("family", "width", "height", "params"), FAMILY_CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("vision_range", [1, 3])
async def test_frontier_finds_the_goal_whenever_it_can_be_seen(
    family: str, width: int, height: int, params: dict[str, Any], seed: int, vision_range: int
) -> None:
    maze = generate(family, width, height, seed, **params)
    # The default start (always one the goal can be seen from) and random open tiles, some of
    # which may be cut off from the goal.
    rng = SeededRandom(seed)
    tiles = maze.open_tiles()
    starts: list[tuple[int, int] | None] = [None]
    starts += [(p.x, p.y) for p in (rng.choice(tiles) for _ in range(3))]
    generous = 4 * width * height
    for start in starts:
        run = new_run(
            maze, "frontier", start=start, vision_range=vision_range, max_footsteps=generous
        )
        origin = run.state.position
        optimum = steps_to_see_goal(maze, origin, vision_range)
        decisions = await play(FrontierAgent(), run)
        assert run.state.tally.failed_moves == 0
        if optimum is None:
            assert not run.state.tally.goal_seen
            last = decisions[-1]
            assert last.action is ActionType.NO_TOOL_CALL
            assert last.assistant_message is not None
            assert "No unexplored tile is reachable" in last.assistant_message
            # It gave up only after seeing every tile it could stand on.
            assert reachable(maze, origin) <= set(run.state.seen)
        else:
            finished = run.state.finished
            assert finished is not None, f"{maze.name} from {origin}: no end"
            assert finished.stop_reason is StopReason.GOAL_SEEN, (maze.name, origin, finished)
            assert optimum <= run.state.tally.footsteps


@pytest.mark.asyncio
async def test_frontier_walks_to_a_known_goal_under_the_reached_rule() -> None:
    maze = generate("rooms", 30, 30, 5)
    run = new_run(maze, "frontier", goal_rule="reached", max_footsteps=5000)
    decisions = await play(FrontierAgent(), run)
    finished = run.state.finished
    assert finished is not None and finished.stop_reason is StopReason.GOAL_REACHED
    assert any("the goal at" in (d.reasoning or "") for d in decisions)


@pytest.mark.asyncio
async def test_blind_agents_learn_walls_from_refused_moves() -> None:
    # Vision range 0: only the tile underfoot is seen, so walls are found by bumping into
    # them; `play` checks that no refused move is ever tried again.
    maze = generate("backtracker", 15, 15, 4, density=0.5)
    run = new_run(maze, "frontier", start=(1, 1), vision_range=0, goal_rule="reached")
    await play(FrontierAgent(), run)
    assert run.state.finished is not None
    assert run.state.finished.stop_reason is StopReason.GOAL_REACHED
    assert run.state.tally.failed_moves > 0
    run = new_run(maze, "wall-follower", start=(1, 1), vision_range=0, goal_rule="reached")
    await play(WallFollowerAgent(), run)
    assert run.state.finished is not None
    assert run.state.finished.stop_reason is StopReason.GOAL_REACHED


def test_frontier_steps_off_a_wall_start_and_breaks_ties_north_first() -> None:
    # Standing on a wall, every neighbour open: N, S, E, W order picks north.
    known = {Position(1, 1): WALL}
    for x, y in ((1, 0), (1, 2), (2, 1), (0, 1)):
        known[Position(x, y)] = 0
    decision = FrontierAgent().choose(observe(known, Position(1, 1), 3, 3), [])
    assert decision.action is ActionType.MOVE_NORTH
    assert decision.reasoning == "nearest unexplored tile (1, 0) is 1 step away; going north"
    # On a frontier tile itself: step into the first unknown neighbour.
    decision = FrontierAgent().choose(observe({Position(1, 1): 0}, Position(1, 1), 3, 3), [])
    assert decision.action is ActionType.MOVE_NORTH
    assert decision.reasoning == "(1, 0) next to (1, 1) is unexplored; going north to look"


def test_frontier_without_a_reachable_frontier_says_so() -> None:
    maze = maze_from_text(
        """
        #####
        #..##
        ###G#
        #####
        """
    )
    known = known_of(maze)
    del known[Position(3, 2)]  # the goal is unknown, and walled off anyway
    decision = FrontierAgent().choose(observe(known, Position(1, 1), 5, 4), [])
    assert decision.action is ActionType.NO_TOOL_CALL
    assert decision.assistant_message == (
        "No unexplored tile is reachable from (1, 1) over known tiles: everything reachable "
        "has been seen, so there is no useful move."
    )
    # A goal in view behind a wall: said so, then the same conclusion.
    decision = FrontierAgent().choose(observe(known_of(maze), Position(1, 1), 5, 4), [])
    assert decision.action is ActionType.NO_TOOL_CALL
    assert decision.reasoning == (
        "the goal at (3, 2) is known but no known path leads there; "
        "nothing left to explore from (1, 1)"
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maze=random_mazes(), data=st.data())
def test_both_searches_give_the_same_answer(maze: Maze, data: st.DataObject) -> None:
    """The lazy and the flat search must agree exactly, or decisions would depend on size."""
    every = known_of(maze)
    keep = data.draw(st.lists(st.booleans(), min_size=len(every), max_size=len(every)))
    known = {p: code for (p, code), kept in zip(every.items(), keep, strict=True) if kept}
    root = Position(
        data.draw(st.integers(0, maze.width - 1)), data.draw(st.integers(0, maze.height - 1))
    )
    # Refused moves: unknown tiles (and the edge beyond the grid) taken as walls.
    unknown = [p for p in every if p not in known]
    refused = data.draw(st.sets(st.sampled_from(unknown))) if unknown else set()
    refused |= {Position(-1, 0), Position(maze.width, 0)}
    search = _KnownMap(observe(known, root, maze.width, maze.height), refused)
    targets: list[Position | None] = [None]
    if maze.goal in known and maze.goal != root:
        targets.append(maze.goal)
    for target in targets:
        lazy = search.search(root, target, budget=10**9)
        flat = search.search(root, target, budget=0)
        assert lazy == flat


def test_frontier_crosses_a_1000_by_1000_map() -> None:
    # Worst case: everything known and open but the far corner, so the search crosses the map.
    # (Its speed is measured by `python -m bench agents`, not here.)
    known = dict.fromkeys((Position(x, y) for y in range(1000) for x in range(1000)), 0)
    del known[Position(999, 999)]
    observation = observe(known, Position(0, 0), 1000, 1000)
    decision = FrontierAgent().choose(observation, [])
    assert decision.action is ActionType.MOVE_SOUTH
    assert (
        decision.reasoning == "nearest unexplored tile (998, 999) is 1997 steps away; going south"
    )


# --- wall-follower ----------------------------------------------------------------------------


def open_pairs(maze: Maze) -> int:
    """Adjacent pairs of open tiles: open tiles - 1 exactly when the open tiles form a tree."""
    rows = maze.rows
    count = 0
    for y in range(maze.height):
        for x in range(maze.width):
            if rows[y][x] != WALL:
                count += x + 1 < maze.width and rows[y][x + 1] != WALL
                count += y + 1 < maze.height and rows[y + 1][x] != WALL
    return count


@pytest.mark.asyncio
@pytest.mark.parametrize(("width", "height", "seed"), [(21, 21, 1), (31, 21, 2), (41, 41, 3)])
async def test_wall_follower_solves_a_perfect_maze(width: int, height: int, seed: int) -> None:
    maze = generate("backtracker", width, height, seed, density=0.5)
    tiles = maze.open_tiles()
    assert open_pairs(maze) == len(tiles) - 1, "density 0.5 must leave a perfect maze"
    cells = len(reachable(maze, (1, 1)))
    run = new_run(maze, "wall-follower", start=(1, 1), max_footsteps=4 * cells)
    await play(WallFollowerAgent(), run)
    finished = run.state.finished
    assert finished is not None and finished.stop_reason is StopReason.GOAL_SEEN
    assert run.state.tally.failed_moves == 0
    # Walking round a tree crosses each corridor at most twice.
    assert run.state.tally.footsteps <= 2 * cells


def test_wall_follower_keeps_its_right_hand_on_the_wall() -> None:
    ring = maze_from_text(
        """
        #####
        #...#
        #.#.#
        #..G#
        #####
        """
    )
    known = known_of(ring)
    # No move yet: heading north, so east (its right) comes first.
    first = WallFollowerAgent().choose(observe(known, Position(1, 1), 5, 5), [])
    assert first.action is ActionType.MOVE_EAST
    assert first.reasoning == (
        "right-hand rule, heading north (no move yet, so north by default); "
        "turning right: going east"
    )
    # Heading east at the corner (3, 1): right is south, and open.
    moved = ActionRecord(
        step=1,
        turn=1,
        action=ActionType.MOVE_EAST,
        success=True,
        from_=Position(2, 1),
        to=Position(3, 1),
        tiles=(),
    )
    refused = replace(moved, step=2, action=ActionType.MOVE_NORTH, success=False, from_=moved.to)
    corner = WallFollowerAgent().choose(observe(known, Position(3, 1), 5, 5), [moved, refused])
    assert corner.action is ActionType.MOVE_SOUTH
    assert corner.reasoning == (
        "right-hand rule, heading east (last move); turning right: going south"
    )
    # Heading east at (2, 1) with (3, 1) refused before (as if unseen): right and straight
    # are ruled out, left (north) is a wall, so back west.
    partial = {p: c for p, c in known.items() if p != Position(3, 1)}
    back_at = replace(moved, from_=Position(1, 1), to=Position(2, 1))
    bump = replace(refused, from_=Position(2, 1))
    bump = replace(bump, action=ActionType.MOVE_EAST)
    decision = WallFollowerAgent().choose(observe(partial, Position(2, 1), 5, 5), [back_at, bump])
    assert decision.action is ActionType.MOVE_WEST
    assert decision.reasoning == (
        "right-hand rule, heading east (last move) (south is a wall, east is a wall, "
        "north is a wall); turning back: going west"
    )


# --- random -----------------------------------------------------------------------------------


async def random_actions(seed: int | None) -> list[tuple[object, ...]]:
    maze = generate("open-field", 20, 20, 9)
    run = new_run(maze, "random", seed=seed, max_footsteps=150)
    await play(RandomAgent(), run, avoid_walls=False)
    return [(r.action, r.success, r.from_, r.to) for r in run.state.actions]


@pytest.mark.asyncio
async def test_random_is_reproducible_for_a_seed() -> None:
    first = await random_actions(7)
    assert len(first) >= 150
    assert await random_actions(7) == first
    assert await random_actions(8) != first
    assert await random_actions(None) == await random_actions(0)
    moves = {action for action, *_ in first}
    assert moves == {
        ActionType.MOVE_NORTH,
        ActionType.MOVE_SOUTH,
        ActionType.MOVE_EAST,
        ActionType.MOVE_WEST,
    }


# --- all agents -------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("model", sorted(BUILTIN_AGENTS))
async def test_a_restarted_runner_makes_the_same_decisions(model: str) -> None:
    maze = generate("backtracker", 25, 25, 11)
    spec = AgentSpec(provider="builtin", model=model, seed=42)
    run = new_run(maze, model, seed=42, max_footsteps=120)
    agent = create_builtin(spec)
    while not run.state.is_finished:
        live = await agent.decide(Observation.from_state(run.state), run.state.actions)
        rebuilt = fold(run.state.run_id, run.events)
        restarted = create_builtin(spec)  # a fresh process: nothing carried over
        again = await restarted.decide(Observation.from_state(rebuilt), rebuilt.actions)
        assert again == live
        send(run, live)
        if live.action is ActionType.NO_TOOL_CALL:
            break
    assert run.state.tally.actions > 0


@pytest.mark.asyncio
async def test_the_seed_is_read_from_the_observation() -> None:
    maze = generate("open-field", 20, 20, 9)
    run = new_run(maze, "random", seed=5)
    observation = Observation.from_state(run.state)
    agent = RandomAgent()
    reasons = set()
    for seed in range(8):
        changed = replace(
            observation, agent=AgentSpec(provider="builtin", model="random", seed=seed)
        )
        reasons.add((await agent.decide(changed, [])).reasoning)
    assert len(reasons) == 8


def test_agents_satisfy_the_protocol() -> None:
    for name, cls in BUILTIN_AGENTS.items():
        agent: Agent = create_builtin(AgentSpec(provider="builtin", model=name))
        assert isinstance(agent, cls)
        assert agent.name == name


def test_unknown_builtin_name_is_refused() -> None:
    spec = AgentSpec(provider="builtin", model="x")
    message = (
        "agent.model: unknown built-in agent 'x'; choose one of frontier, random, wall-follower"
    )
    with pytest.raises(ValidationError) as info:
        create_builtin(spec)
    assert str(info.value) == message
    assert info.value.field == "agent.model"
    with pytest.raises(ValidationError) as info:
        check_agent_spec(spec)
    assert str(info.value) == message
    check_agent_spec(AgentSpec(provider="builtin", model="frontier"))
    check_agent_spec(AgentSpec(provider="ollama", model="x"))  # checked elsewhere
    with pytest.raises(ValidationError, match=r"^agent\.provider: "):
        create_builtin(AgentSpec(provider="ollama", model="frontier"))
