"""The ``frontier`` baseline: walk to the nearest unexplored edge of the known map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oriole.agents.base import Decision, Observation
from oriole.agents.baseline import (
    GOAL,
    BuiltinAgent,
    agent_seed,
    failed_targets,
    move,
    no_move,
    seeded_draws,
    steps_text,
)
from oriole.agents.known_map import KnownMap
from oriole.geometry import RAY_ORDER, Direction, Position
from oriole.memory import ActionRecord
from oriole.rng import SeededRandom


@dataclass(frozen=True, slots=True)
class Route:
    """Where the agent heads: a tile, an unknown tile beyond it (or itself), the first step.

    ``tiles`` and ``firsts`` count the choices it was drawn from (1 and 1: no tie, or seed 0).
    """

    end: Position
    beyond: Position
    first: Direction
    steps: int
    tiles: int = 1
    firsts: int = 1


def find_route(
    search: KnownMap, root: Position, target: Position | None, draws: SeededRandom | None
) -> Route | None:
    """The way to ``target``, or to the nearest frontier tile if it is None; None if none.

    Without ``draws`` (seed 0) ties are broken by the search's fixed N, S, E, W order. With
    them, first one of the tiles at the least distance is drawn, then one of the first steps
    of its shortest paths (at distance 0: one of the steps into an unknown neighbour).
    """
    if draws is None:
        found = search.search(root, target)
        if found is None:
            return None
        end, beyond, first, steps = found
        return Route(Position(*end), Position(*beyond), first, steps)
    tied = search.ties(root, target)
    if tied is None:
        return None
    steps, candidates = tied
    cell, mask = candidates[draws.below(len(candidates))]
    options = [direction for bit, direction in enumerate(RAY_ORDER) if mask >> bit & 1]
    first = options[draws.below(len(options))]
    end = Position(*cell)
    if target is not None:
        beyond = end
    elif steps == 0:
        beyond = end.step(first)
    else:
        beyond = Position(*search.unknown_neighbour(cell))
    return Route(end, beyond, first, steps, len(candidates), len(options))


def _tie_note(route: Route, seed: int) -> str:
    """What a seeded draw chose from, for the reasoning ("" when there was no choice)."""
    drawn = []
    if route.tiles > 1:
        drawn.append(f"{route.tiles} tiles as near")
    if route.firsts > 1:
        kind = "unexplored neighbours" if route.steps == 0 else "equally short first steps"
        drawn.append(f"{route.firsts} {kind}")
    return f" (seed {seed} drew from {' and '.join(drawn)})" if drawn else ""


class FrontierAgent(BuiltinAgent):
    """Greedy frontier exploration: walk to the nearest unexplored edge of the known map.

    A frontier tile is a known non-wall tile with an in-grid neighbour that is still unknown.
    Paths are breadth-first over known non-wall tiles from the current tile (which is the
    root even if it is a wall: an agent can step off a wall start). Once the goal is known the
    agent walks to it instead (this matters under the ``reached`` goal rule).

    Ties — several frontier tiles equally near, several first steps equally short — are the
    agent's free choices. Seed 0 breaks them in N, S, E, W search order, the same way every
    time; any other seed draws them from (seed, ``lived_seq``) (see `find_route`).
    """

    name = "frontier"

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        here = observation.position
        search = KnownMap(observation, failed_targets(history))
        seed = agent_seed(observation)
        draws = None if seed == 0 else seeded_draws(seed, observation.lived_seq)
        known = observation.known
        goal = None
        if GOAL in known.values():  # a C-speed scan; the goal is rarely known before the end
            goal = next(p for p, code in known.items() if code == GOAL)
        prefix = ""
        if goal is not None:
            if goal == here:
                return no_move(f"Standing on the goal at {here}; there is nothing left to do.")
            route = find_route(search, here, goal, draws)
            if route is not None:
                return move(
                    route.first,
                    f"the goal at {goal} is {steps_text(route.steps)} away over known tiles; "
                    f"going {route.first.value}{_tie_note(route, seed)}",
                )
            prefix = f"the goal at {goal} is known but no known path leads there; "
        route = find_route(search, here, None, draws)
        if route is None:
            cannot = " and the known goal cannot be reached" if goal is not None else ""
            return no_move(
                f"No unexplored tile is reachable from {here} over known tiles: everything "
                f"reachable has been seen{cannot}, so there is no useful move.",
                reasoning=f"{prefix}nothing left to explore from {here}",
            )
        note = _tie_note(route, seed)
        if route.steps == 0:
            return move(
                route.first,
                f"{prefix}{route.beyond} next to {here} is unexplored; "
                f"going {route.first.value} to look{note}",
            )
        return move(
            route.first,
            f"{prefix}nearest unexplored tile {route.end} is {steps_text(route.steps)} away; "
            f"going {route.first.value}{note}",
        )
