"""Built-in baseline agents: ``random``, ``wall-follower`` and ``frontier``.

They are the yardsticks LLM runs are compared against, so they play by exactly the same
rules: they see only the `Observation` (what the maze told them so far) and the action
history, never the maze itself. None of them keeps state between calls — every decision is
a pure function of its inputs and the agent's seed — so a runner restarted from the event
log on another machine makes identical decisions.

What an agent may assume about the grid (shared by the wall-follower and the frontier agent):
a tile is a wall if it was seen as one, or if a move into it failed (which is how an agent
with vision range 0 learns walls). Off-grid tiles are never entered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Literal, cast

from oriole.agents.base import Decision, Observation
from oriole.errors import ValidationError
from oriole.experiment import AgentSpec
from oriole.geometry import RAY_ORDER, Direction, Position, Tile
from oriole.intents import ActionType, move_action
from oriole.memory import ActionRecord
from oriole.rng import SeededRandom

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_WALL = int(Tile.WALL)
_GOAL = int(Tile.GOAL)

_BY_DELTA = {d.delta: d for d in RAY_ORDER}

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


def _move(direction: Direction, reasoning: str) -> Decision:
    return Decision(
        action=move_action(direction), reasoning=reasoning, model_call=None, new_turn=True
    )


def _no_move(message: str, reasoning: str | None = None) -> Decision:
    """A turn without a move; the message says why, as a model's plain answer would."""
    return Decision(
        action=ActionType.NO_TOOL_CALL,
        reasoning=message if reasoning is None else reasoning,
        assistant_message=message,
        model_call=None,
        new_turn=True,
    )


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"


def _seed(observation: Observation) -> int:
    """The agent's seed as an unsigned 64-bit word (``None`` means 0)."""
    seed = observation.agent.seed
    return 0 if seed is None else seed & _MASK64


def failed_targets(history: Sequence[ActionRecord]) -> set[Position]:
    """Tiles a move was refused into: walls, or off the grid, even if never seen."""
    blocked: set[Position] = set()
    for record in history:
        if not record.success:
            direction = record.action.direction
            if direction is not None:
                blocked.add(record.from_.step(direction))
    return blocked


class BuiltinAgent:
    """Common shape of the baselines: a pure `choose`, wrapped by the async `decide`.

    `choose` is public so that benchmarks and replays can call it without an event loop.
    """

    name: str = "builtin"

    async def decide(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        return self.choose(observation, history)

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        raise NotImplementedError


class RandomAgent(BuiltinAgent):
    """Uniform random moves; the draw depends only on (seed, basis_seq), so it is replayable.

    Walls are not avoided on purpose: this is the know-nothing baseline.
    """

    name = "random"

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        seed = _seed(observation)
        # SeededRandom's first output is a SplitMix64 finalisation of this word.
        word = ((seed * _GOLDEN_GAMMA) ^ observation.basis_seq) & _MASK64
        direction = RAY_ORDER[SeededRandom(word).below(4)]
        return _move(
            direction,
            f"random move (seed {seed}, after event {observation.basis_seq}): {direction.value}",
        )


class WallFollowerAgent(BuiltinAgent):
    """The right-hand rule: keep a wall on the right, trying right, straight, left, back.

    The heading is the direction of the last successful move in the history; before any
    move it is north (row 0 is the top of the grid and north is the first ray cast), so the
    first move tries east, north, west, south in that order. Unknown tiles count as
    passable so they get tried; a failed move marks its target as a wall for later calls.
    In a perfect (simply connected) maze this walks round the whole tree and so sees every
    tile reachable from the start.
    """

    name = "wall-follower"

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        heading = Direction.NORTH
        remembered = False
        for record in reversed(history):
            direction = record.action.direction
            if record.success and direction is not None:
                heading, remembered = direction, True
                break
        known = observation.known
        blocked = failed_targets(history)
        here = observation.position
        options = (
            ("turning right", _RIGHT_OF[heading]),
            ("straight on", heading),
            ("turning left", _LEFT_OF[heading]),
            ("turning back", _OPPOSITE[heading]),
        )
        why = "last move" if remembered else "no move yet, so north by default"
        refused: list[str] = []
        for label, direction in options:
            target = here.step(direction)
            if not (0 <= target.x < observation.width and 0 <= target.y < observation.height):
                refused.append(f"{direction.value} is the edge")
            elif known.get(target) == _WALL or target in blocked:
                refused.append(f"{direction.value} is a wall")
            else:
                blocked_text = f" ({', '.join(refused)})" if refused else ""
                return _move(
                    direction,
                    f"right-hand rule, heading {heading.value} ({why}){blocked_text}; "
                    f"{label}: going {direction.value}",
                )
        return _no_move(f"Walled in at {here}: {', '.join(refused)}; there is no move to make.")


class FrontierAgent(BuiltinAgent):
    """Greedy frontier exploration: walk to the nearest unexplored edge of the known map.

    A frontier tile is a known non-wall tile with an in-grid neighbour that is still unknown.
    Paths are breadth-first over known non-wall tiles from the current tile (which is the
    root even if it is a wall: an agent can step off a wall start), neighbours in N, S, E, W
    order, so ties are broken the same way every time. Once the goal is known the agent
    walks to it instead (this matters under the ``reached`` goal rule).
    """

    name = "frontier"

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        here = observation.position
        search = _KnownMap(observation, failed_targets(history))
        known = observation.known
        goal = None
        if _GOAL in known.values():  # a C-speed scan; the goal is rarely known before the end
            goal = next(p for p, code in known.items() if code == _GOAL)
        prefix = ""
        if goal is not None:
            if goal == here:
                return _no_move(f"Standing on the goal at {here}; there is nothing left to do.")
            found = search.path(here, goal)
            if found is not None:
                first, steps = found
                return _move(
                    first,
                    f"the goal at {goal} is {_steps(steps)} away over known tiles; "
                    f"going {first.value}",
                )
            prefix = f"the goal at {goal} is known but no known path leads there; "
        frontier = search.nearest_frontier(here)
        if frontier is None:
            cannot = " and the known goal cannot be reached" if goal is not None else ""
            return _no_move(
                f"No unexplored tile is reachable from {here} over known tiles: everything "
                f"reachable has been seen{cannot}, so there is no useful move.",
                reasoning=f"{prefix}nothing left to explore from {here}",
            )
        tile, first, steps, unknown = frontier
        if steps == 0:
            return _move(
                first,
                f"{prefix}{unknown} next to {here} is unexplored; going {first.value} to look",
            )
        return _move(
            first,
            f"{prefix}nearest unexplored tile {tile} is {_steps(steps)} away; going {first.value}",
        )


_Cell = tuple[int, int]
#: What `_KnownMap._search` finds: the tile reached, the tile beyond it (the unknown neighbour
#: of a frontier tile, or the tile itself), the first step from the root and the distance.
_Found = tuple[_Cell, _Cell, Direction, int]
# Cell states of the flat search grid.
_UNKNOWN, _OPEN, _CLOSED = 0, 1, 2


class _KnownMap:
    """The known part of the grid, searched breadth-first.

    Two implementations of the same search (same FIFO order, same N, S, E, W neighbour
    order, hence the same answer): a lazy one that looks tiles up in the observation's
    mapping only as it reaches them — cheap when the target is near, the usual case — and a
    flat one over a padded byte grid, about five times faster per tile but paying a copy of
    the whole known map first. The lazy search hands over once it has visited a fixed share
    of the known tiles, which bounds a decision on a fully known 1000 x 1000 map to well
    under a second.
    """

    __slots__ = ("blocked", "height", "known", "width")

    def __init__(self, observation: Observation, blocked: set[Position]) -> None:
        # Plain tuples equal and hash like the `Position` keys and are much cheaper to build.
        self.known = cast(Mapping[_Cell, int], observation.known)
        self.blocked = cast(set[_Cell], blocked)
        self.width = observation.width
        self.height = observation.height

    def path(self, root: Position, target: Position) -> tuple[Direction, int] | None:
        """First step and length of a shortest known path to ``target`` (None if none)."""
        found = self.search(root, target)
        return None if found is None else (found[2], found[3])

    def nearest_frontier(self, root: Position) -> tuple[Position, Direction, int, Position] | None:
        """Nearest frontier tile, first step towards it, its distance and an unknown neighbour.

        At distance 0 the first step is the one into that unknown neighbour. None when no
        frontier is reachable.
        """
        found = self.search(root, None)
        if found is None:
            return None
        end, beyond, first, steps = found
        return Position(*end), first, steps, Position(*beyond)

    def search(self, root: Position, target: Position | None, *, budget: int = -1) -> _Found | None:
        """BFS from ``root`` to ``target``, or to the nearest frontier tile if it is None.

        ``budget`` (tiles the lazy search may visit; -1 chooses from the map size) exists so
        that tests can force either implementation.
        """
        if target == root:
            raise ValueError(f"already at {root}: there is no first step to take")
        if budget < 0:
            budget = 1024 + len(self.known) // 16
        if budget > 0:
            found = self._lazy(root, target, budget)
            if found is not False:
                return found
        return self._flat(root, target)

    def _lazy(
        self, root: Position, target: Position | None, budget: int
    ) -> _Found | Literal[False] | None:
        """The search over the mapping; False if it visited ``budget`` tiles without an answer."""
        get = self.known.get
        blocked = self.blocked
        width, height = self.width, self.height
        wall = _WALL
        start: _Cell = (root.x, root.y)
        parents: dict[_Cell, _Cell] = {start: start}
        queue = deque([start])
        pop, push = queue.popleft, queue.append
        while queue:
            budget -= 1
            if budget < 0:
                return False
            node = pop()
            if node == target:
                return _walk_back(parents, start, node, node)
            x, y = node
            for cell in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y)):
                code = get(cell)
                if code is None:
                    if (
                        target is None
                        and 0 <= cell[0] < width
                        and 0 <= cell[1] < height
                        and cell not in blocked
                    ):
                        # BFS pops in distance order, so ``node`` is the nearest frontier tile.
                        return _walk_back(parents, start, node, cell)
                elif code != wall and cell not in parents:
                    parents[cell] = node
                    push(cell)
        return None

    def _flat(self, root: Position, target: Position | None) -> _Found | None:
        """The same search over a padded byte grid (a ring of closed cells around it)."""
        width, height = self.width, self.height
        stride = width + 2
        grid = bytearray([_CLOSED]) * (stride * (height + 2))
        unknown_row = bytes([_UNKNOWN]) * width
        for y in range(height):
            base = (y + 1) * stride + 1
            grid[base : base + width] = unknown_row
        for x, y in self.blocked:  # first, so that seen tiles win, as in the lazy search
            if 0 <= x < width and 0 <= y < height:
                grid[(y + 1) * stride + x + 1] = _CLOSED
        wall = _WALL
        for (x, y), code in self.known.items():
            grid[(y + 1) * stride + x + 1] = _CLOSED if code == wall else _OPEN
        start = (root.y + 1) * stride + root.x + 1
        goal = -1 if target is None else (target.y + 1) * stride + target.x + 1
        explore = target is None
        # came[i]: 0 unvisited, 1-4 reached by a step N, S, E, W, 5 the root.
        came = bytearray(len(grid))
        came[start] = 5
        level = [start]
        while level:
            following: list[int] = []
            push = following.append
            for i in level:
                if i == goal:
                    return self._flat_found(came, stride, start, i, i)
                for arrival, j in enumerate((i - stride, i + stride, i + 1, i - 1), 1):
                    state = grid[j]
                    if state == _UNKNOWN:
                        if explore:
                            return self._flat_found(came, stride, start, i, j)
                    elif state == _OPEN and not came[j]:
                        came[j] = arrival
                        push(j)
            level = following
        return None

    @staticmethod
    def _flat_found(came: bytearray, stride: int, start: int, end: int, beyond: int) -> _Found:
        back = (0, stride, -stride, -1, 1)  # undo a step N, S, E, W
        steps = 0
        node, step_to = end, beyond
        while node != start:
            node, step_to = node + back[came[node]], node
            steps += 1
        first = _BY_DELTA[_delta(step_to - start, stride)]
        end_y, end_x = divmod(end, stride)
        beyond_y, beyond_x = divmod(beyond, stride)
        return (end_x - 1, end_y - 1), (beyond_x - 1, beyond_y - 1), first, steps


def _delta(offset: int, stride: int) -> tuple[int, int]:
    """(dx, dy) of a one-tile step given as a flat offset."""
    if offset in (1, -1):
        return offset, 0
    return 0, offset // stride


def _walk_back(parents: Mapping[_Cell, _Cell], start: _Cell, end: _Cell, beyond: _Cell) -> _Found:
    """Follow the parents from ``end`` back to the root; at distance 0 step to ``beyond``."""
    steps = 0
    node, step_to = end, beyond
    while node != start:
        node, step_to = parents[node], node
        steps += 1
    first = _BY_DELTA[(step_to[0] - start[0], step_to[1] - start[1])]
    return end, beyond, first, steps


#: Every built-in agent by the name used as ``AgentSpec.model``.
BUILTIN_AGENTS: Mapping[str, type[BuiltinAgent]] = MappingProxyType(
    {cls.name: cls for cls in (FrontierAgent, RandomAgent, WallFollowerAgent)}
)


def _unknown(name: str) -> ValidationError:
    choices = ", ".join(sorted(BUILTIN_AGENTS))
    return ValidationError(
        "agent.model", f"unknown built-in agent '{name}'; choose one of {choices}"
    )


def check_agent_spec(spec: AgentSpec) -> None:
    """Refuse a ``builtin`` spec naming no built-in agent; other providers are checked elsewhere."""
    if spec.provider == "builtin" and spec.model not in BUILTIN_AGENTS:
        raise _unknown(spec.model)


def create_builtin(spec: AgentSpec) -> BuiltinAgent:
    """The built-in agent a spec names (the seed is read from each observation, not here)."""
    if spec.provider != "builtin":
        raise ValidationError(
            "agent.provider", f"provider '{spec.provider}' is not served by the built-in agents"
        )
    cls = BUILTIN_AGENTS.get(spec.model)
    if cls is None:
        raise _unknown(spec.model)
    return cls()
