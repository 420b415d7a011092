"""The ``wall-follower`` baseline: one hand on the wall, tried in a fixed order of turns."""

from __future__ import annotations

from collections.abc import Sequence

from oriole.agents.base import Decision, Observation
from oriole.agents.baseline import (
    WALL,
    BuiltinAgent,
    agent_seed,
    failed_targets,
    move,
    no_move,
    seeded_draws,
)
from oriole.geometry import RAY_ORDER, Direction
from oriole.memory import ActionRecord

_RIGHT_OF = {
    Direction.NORTH: Direction.EAST,
    Direction.EAST: Direction.SOUTH,
    Direction.SOUTH: Direction.WEST,
    Direction.WEST: Direction.NORTH,
}
_OPPOSITE = {
    Direction.NORTH: Direction.SOUTH,
    Direction.SOUTH: Direction.NORTH,
    Direction.EAST: Direction.WEST,
    Direction.WEST: Direction.EAST,
}
_LEFT_OF = {right: heading for heading, right in _RIGHT_OF.items()}


def hand_and_heading(seed: int) -> tuple[str, Direction]:
    """The hand (``right`` or ``left``) and the heading before any move, for ``seed``.

    Seed 0 is the canonical right hand, heading north; any other seed draws both (salt 0:
    they hold for the whole run, whatever the observation).
    """
    if seed == 0:
        return "right", Direction.NORTH
    draws = seeded_draws(seed, 0)
    hand = ("right", "left")[draws.below(2)]
    return hand, RAY_ORDER[draws.below(4)]


class WallFollowerAgent(BuiltinAgent):
    """The right- or left-hand rule: keep a wall on that hand, trying that turn, straight,
    the other turn, back.

    The seed chooses the hand and the heading before the first move (`hand_and_heading`);
    seed 0 is the right hand, heading north (row 0 is the top of the grid and north is the
    first ray cast), so the first move tries east, north, west, south in that order. After
    that the heading is the direction of the last successful move in the history. Unknown
    tiles count as passable so they get tried; a failed move marks its target as a wall for
    later calls. In a perfect (simply connected) maze either hand walks round the whole tree
    and so sees every tile reachable from the start.
    """

    name = "wall-follower"

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        seed = agent_seed(observation)
        hand, heading = hand_and_heading(seed)
        remembered = False
        for record in reversed(history):
            direction = record.action.direction
            if record.success and direction is not None:
                heading, remembered = direction, True
                break
        known = observation.known
        blocked = failed_targets(history)
        here = observation.position
        if hand == "right":
            near, far = ("turning right", _RIGHT_OF[heading]), ("turning left", _LEFT_OF[heading])
        else:
            near, far = ("turning left", _LEFT_OF[heading]), ("turning right", _RIGHT_OF[heading])
        options = (near, ("straight on", heading), far, ("turning back", _OPPOSITE[heading]))
        if remembered:
            why = "last move"
        elif seed == 0:
            why = "no move yet, so north by default"
        else:
            why = f"no move yet, so {heading.value} as drawn with seed {seed}"
        refused: list[str] = []
        for label, direction in options:
            target = here.step(direction)
            if not (0 <= target.x < observation.width and 0 <= target.y < observation.height):
                refused.append(f"{direction.value} is the edge")
            elif known.get(target) == WALL or target in blocked:
                refused.append(f"{direction.value} is a wall")
            else:
                blocked_text = f" ({', '.join(refused)})" if refused else ""
                return move(
                    direction,
                    f"{hand}-hand rule, heading {heading.value} ({why}){blocked_text}; "
                    f"{label}: going {direction.value}",
                )
        return no_move(f"Walled in at {here}: {', '.join(refused)}; there is no move to make.")
