"""Seeds of the built-in agents choose their free choices and nothing else.

The frontier agent's ties (equally near tiles, equally short first steps) and the
wall-follower's hand and first heading are drawn from the seed, so repetitions with
different seeds are different runs; the same seed plays the same run again; seed 0 (or none)
plays exactly the paths the agents played before they read a seed.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oriole.agents.baseline import agent_seed
from oriole.agents.builtin import FrontierAgent, WallFollowerAgent, create_builtin
from oriole.agents.known_map import KnownMap
from oriole.agents.wall_follower import hand_and_heading
from oriole.events import ActionRequested, StopReason
from oriole.experiment import AgentSpec
from oriole.generators import generate
from oriole.geometry import RAY_ORDER, Direction, Position
from oriole.intents import ActionType
from oriole.local_run import LocalRun
from oriole.maze import Maze
from tests.builtin_agents_support import WALL, known_of, new_run, observe, play
from tests.support import maze_from_text, random_mazes

ROOM = maze_from_text(
    """
    ###########
    #.........#
    #.........#
    #.........#
    #.........#
    #........G#
    ###########
    """,
    name="room",
)


def path_of(run: LocalRun) -> str:
    """The run's actions as letters (n, s, e, w; ! after a refused move)."""
    return "".join(
        (r.action.value[5] if r.action.direction else "x") + ("" if r.success else "!")
        for r in run.state.actions
    )


async def walk(maze: Maze, model: str, seed: int | None, **options: Any) -> LocalRun:
    run = new_run(maze, model, seed=seed, **options)
    await play(create_builtin(AgentSpec(provider="builtin", model=model, seed=seed)), run)
    return run


def decisions_of(run: LocalRun) -> list[tuple[ActionType, str | None]]:
    """What the agent decided, as recorded (intent ids aside: they are fresh each time)."""
    requested = [e for e in run.events if isinstance(e, ActionRequested)]
    return [(e.payload.action, e.payload.reasoning) for e in requested]


# --- seed 0 or none: the paths of the agents before they read a seed --------------------

#: Captured from the agents of commit 90199a0 (before seeds): the path, or its length and the
#: first 16 hex digits of its sha256. A change here changes the published baselines.
UNSEEDED = [
    ("room", "frontier", (2, 2), 1, "reached", "nessssennnnessssennnnessssee"),
    ("room", "frontier", (2, 2), 3, "seen", "neeesssse"),
    ("backtracker", "frontier", None, 0, "reached", (166, "e1c3d1816a06778c")),
    ("backtracker", "wall-follower", None, 0, "reached", (166, "dd1c29d21a4db6f0")),
    ("rooms", "frontier", None, 3, "seen", (107, "90270fa243307d36")),
    ("perfect", "wall-follower", (1, 1), 3, "seen", (122, "b9da25a73545c20b")),
]
MAZES = {
    "room": lambda: ROOM,
    "backtracker": lambda: generate("backtracker", 21, 21, 5),
    "rooms": lambda: generate("rooms", 30, 30, 5),
    "perfect": lambda: generate("backtracker", 21, 21, 1, density=0.5),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", [None, 0, 2**64])
@pytest.mark.parametrize(("maze", "model", "start", "vision", "rule", "expected"), UNSEEDED)
async def test_seed_0_or_none_plays_the_paths_of_before(
    seed: int | None, maze: str, model: str, start: Any, vision: int, rule: Any, expected: Any
) -> None:
    options = {"start": start, "vision_range": vision, "goal_rule": rule, "max_footsteps": 600}
    run = new_run(MAZES[maze](), model, seed=seed, **options)
    await play(create_builtin(run.state.require_spec()[0].agent), run, avoid_walls=False)
    path = path_of(run)
    if isinstance(expected, str):
        assert path == expected
    else:
        assert (len(path), hashlib.sha256(path.encode()).hexdigest()[:16]) == expected


def test_seeds_are_64_bit_words() -> None:
    seeds = [None, 0, 1, -1, 2**64, 2**64 + 5]
    words = [agent_seed(observe({}, Position(0, 0), 1, 1, seed=s)) for s in seeds]
    assert words == [0, 0, 1, 2**64 - 1, 0, 5]


# --- frontier -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_frontier_repetitions_with_different_seeds_differ() -> None:
    # An open room: ties everywhere.
    paths = {}
    for seed in range(9):
        run = await walk(ROOM, "frontier", seed, start=(2, 2), vision_range=1, goal_rule="reached")
        assert run.state.finished is not None
        assert run.state.finished.stop_reason is StopReason.GOAL_REACHED
        assert run.state.tally.failed_moves == 0
        paths[seed] = path_of(run)
    assert paths[0] == UNSEEDED[0][-1]
    assert len(set(paths.values())) >= 6, paths
    # ... and so do the numbers an interval is computed over.
    maze = generate("backtracker", 21, 21, 5)
    footsteps = set()
    for seed in range(1, 7):
        run = await walk(maze, "frontier", seed)
        assert run.state.finished is not None
        assert run.state.finished.stop_reason is StopReason.GOAL_SEEN
        footsteps.add(run.state.tally.footsteps)
    assert len(footsteps) > 1


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["frontier", "wall-follower"])
async def test_the_same_seed_plays_the_same_run_again(model: str) -> None:
    maze = generate("open-field", 20, 20, 9)
    first = await walk(maze, model, 12345, vision_range=1, max_footsteps=300)
    again = await walk(maze, model, 12345, vision_range=1, max_footsteps=300)
    assert path_of(first) == path_of(again)
    assert decisions_of(first) == decisions_of(again)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("family", "params"),
    [("backtracker", {}), ("open-field", {"wall_fraction": 0.3}), ("rooms", {}), ("pillars", {})],
)
async def test_a_seeded_frontier_agent_still_finds_the_goal(
    family: str, params: dict[str, Any]
) -> None:
    maze = generate(family, 25, 25, 2, **params)
    for seed in (1, 99, 2**63):
        run = await walk(maze, "frontier", seed, vision_range=1, max_footsteps=4 * 25 * 25)
        assert run.state.finished is not None
        assert run.state.finished.stop_reason is StopReason.GOAL_SEEN
        assert run.state.tally.failed_moves == 0


def test_frontier_draws_a_first_step_into_the_unknown() -> None:
    # On a frontier tile with four unknown neighbours: seed 0 looks north, seeds draw.
    here = Position(1, 1)
    known = {here: 0}
    decision = FrontierAgent().choose(observe(known, here, 3, 3), [])
    assert decision.reasoning == "(1, 0) next to (1, 1) is unexplored; going north to look"
    drawn = set()
    for seed in range(1, 25):
        decision = FrontierAgent().choose(observe(known, here, 3, 3, seed=seed), [])
        direction = decision.action.direction
        assert direction is not None
        assert decision.reasoning == (
            f"{here.step(direction)} next to (1, 1) is unexplored; going {direction.value} "
            f"to look (seed {seed} drew from 4 unexplored neighbours)"
        )
        drawn.add(direction)
    assert drawn == set(RAY_ORDER)


def test_frontier_draws_among_equally_short_ways_to_the_goal() -> None:
    known = dict.fromkeys((Position(x, y) for y in range(3) for x in range(3)), 0)
    known[Position(2, 2)] = 2
    drawn = set()
    for seed in range(1, 17):
        decision = FrontierAgent().choose(observe(known, Position(0, 0), 3, 3, seed=seed), [])
        direction = decision.action.direction
        assert decision.reasoning == (
            f"the goal at (2, 2) is 4 steps away over known tiles; going {direction} "
            f"(seed {seed} drew from 2 equally short first steps)"
        )
        drawn.add(direction)
    assert drawn == {Direction.EAST, Direction.SOUTH}


def test_a_draw_depends_on_the_event_it_answers() -> None:
    # Same seed, same map: the tie is drawn again for each event (basis_seq).
    here = Position(1, 1)
    actions = {
        FrontierAgent().choose(observe({here: 0}, here, 3, 3, seed=5, basis_seq=n), []).action
        for n in range(1, 30)
    }
    assert len(actions) == 4


def _distances(
    known: dict[Position, int], root: Position, skip: Position | None = None
) -> dict[Position, int]:
    """Plain BFS distances over known non-wall tiles (the root always counts)."""
    dist = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for direction in RAY_ORDER:
            near = node.step(direction)
            if near in known and known[near] != WALL and near not in dist and near != skip:
                dist[near] = dist[node] + 1
                queue.append(near)
    return dist


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maze=random_mazes(), data=st.data())
def test_ties_are_every_nearest_tile_with_every_shortest_first_step(
    maze: Maze, data: st.DataObject
) -> None:
    every = known_of(maze)
    share = data.draw(st.integers(0, 10))  # tenths of the tiles known, about
    keep = data.draw(st.lists(st.integers(0, 9), min_size=len(every), max_size=len(every)))
    known = {p: code for (p, code), k in zip(every.items(), keep, strict=True) if k < share}
    root = Position(
        data.draw(st.integers(0, maze.width - 1)), data.draw(st.integers(0, maze.height - 1))
    )
    unknown = [p for p in every if p not in known]
    refused = data.draw(st.sets(st.sampled_from(unknown))) if unknown else set()
    search = KnownMap(observe(known, root, maze.width, maze.height), refused)

    def unexplored(p: Position) -> bool:
        return p in every and p not in known and p not in refused

    dist = _distances(known, root)
    targets: list[Position | None] = [None]
    if maze.goal in known and maze.goal != root:
        targets.append(maze.goal)
    for target in targets:
        lazy = search.ties(root, target, budget=10**9)
        assert search.ties(root, target, budget=0) == lazy  # the flat search agrees exactly
        if target is None:
            ends = [p for p in dist if any(unexplored(p.step(d)) for d in RAY_ORDER)]
        else:
            ends = [target] if target in dist else []
        one = search.search(root, target, budget=10**9)
        if not ends:
            assert lazy is None and one is None
            continue
        assert lazy is not None and one is not None
        steps, tied = lazy
        assert steps == min(dist[p] for p in ends) == one[3]
        expected = {}
        for end in (p for p in ends if dist[p] == steps):
            if steps == 0:
                bits = [d for d in RAY_ORDER if unexplored(end.step(d))]
            else:
                bits = [
                    d
                    for d in RAY_ORDER
                    if known.get(root.step(d), WALL) != WALL
                    and _distances(known, root.step(d), skip=root).get(end) == steps - 1
                ]
            expected[(end.x, end.y)] = sum(1 << RAY_ORDER.index(d) for d in bits)
        assert dict(tied) == expected
        assert len(tied) == len(expected)
        # The unseeded search's answer is one of the tied choices.
        assert expected[one[0]] >> RAY_ORDER.index(one[2]) & 1


# --- wall-follower ------------------------------------------------------------------------


def test_wall_follower_seeds_draw_both_hands_and_every_heading() -> None:
    assert hand_and_heading(0) == ("right", Direction.NORTH)
    drawn = {hand_and_heading(seed) for seed in range(1, 41)}
    assert {hand for hand, _ in drawn} == {"right", "left"}
    assert {heading for _, heading in drawn} == set(RAY_ORDER)


@pytest.mark.asyncio
async def test_wall_follower_keeps_its_drawn_hand_and_solves_a_perfect_maze() -> None:
    maze = generate("backtracker", 21, 21, 1, density=0.5)
    paths = {}
    for seed in range(8):
        hand, heading = hand_and_heading(seed)
        run = new_run(maze, "wall-follower", seed=seed, start=(1, 1), max_footsteps=600)
        decisions = await play(WallFollowerAgent(), run)
        assert run.state.finished is not None
        assert run.state.finished.stop_reason is StopReason.GOAL_SEEN
        assert all((d.reasoning or "").startswith(f"{hand}-hand rule, ") for d in decisions)
        why = "north by default" if seed == 0 else f"{heading.value} as drawn with seed {seed}"
        assert f"heading {heading.value} (no move yet, so {why})" in (decisions[0].reasoning or "")
        paths[seed] = (hand, path_of(run))
    assert {hand for hand, _ in paths.values()} == {"right", "left"}
    # Left and right hands walk the tree in opposite orders.
    assert len({path for _, path in paths.values()}) > 1


def test_a_left_hand_tries_left_first() -> None:
    seed = next(s for s in range(1, 100) if hand_and_heading(s) == ("left", Direction.NORTH))
    here = Position(1, 1)
    known = dict.fromkeys((Position(x, y) for y in range(3) for x in range(3)), 0)
    decision = WallFollowerAgent().choose(observe(known, here, 3, 3, seed=seed), [])
    assert decision.action is ActionType.MOVE_WEST
    assert decision.reasoning == (
        f"left-hand rule, heading north (no move yet, so north as drawn with seed {seed}); "
        "turning left: going west"
    )
