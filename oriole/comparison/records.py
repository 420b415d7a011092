"""One finished run as a comparison sees it: its factors, its place and its measurements.

The shell reads a run's projection row and its actions; `run_record` derives everything
else here, with the core's maze analysis (the shortest way to see the goal, the reachable
tiles), so every report computes the same number the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from oriole.analysis import reachable, steps_to_see_goal
from oriole.comparison.arms import cell_factors, factor_text
from oriole.geometry import Tile
from oriole.maze import Maze

#: The per-run measurements, in report order (each a number, or None where undefined).
METRICS = (
    "footsteps",
    "actions",
    "turns",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_s",
    "inference_s",
    "path_efficiency",
    "unique_tiles",
    "revisit_ratio",
    "seen_share",
    "wall_bumps",
    "recalls",
    "no_tool_turns",
)
MOVES = frozenset({"move_north", "move_south", "move_east", "move_west"})


@dataclass(frozen=True, slots=True)
class ActionFacts:
    """What one archived action contributes (a row of ``agent_actions``)."""

    action_type: str
    success: bool
    to_x: int
    to_y: int
    tiles_seen: Sequence[Sequence[int]] = ()
    inference_ms: float | None = None


@dataclass(frozen=True, slots=True)
class RunFacts:
    """A finished run's projection row (``experiments``), as the shell read it."""

    run_id: str
    provider: str
    model: str
    endpoint: str | None
    prompt_version: str | None
    options: Mapping[str, Any]
    seed: int | None
    labels: Mapping[str, str]
    maze_hash: str
    maze_name: str
    start_x: int
    start_y: int
    vision_range: int
    status: str
    stop_reason: str | None
    goal_seen: bool
    goal_reached: bool
    footsteps: int
    actions: int
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float | None
    #: "PARENT after step K" for a fork (docs/forks.md): its start is that situation.
    fork_of: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    factors: dict[str, str]
    maze_hash: str
    maze_name: str
    start: tuple[int, int]
    seed: int | None
    batch_id: str | None
    cell: str | None
    repetition: int | None
    status: str
    stop_reason: str | None
    success: bool
    goal_reached: bool
    failed: bool
    metrics: dict[str, float | None]
    #: Tile -> how many times the run stood on it (the start counts once).
    visits: Counter[tuple[int, int]] = field(default_factory=Counter)
    #: The situation a fork started from ("PARENT after step K"), None for any other run.
    fork_of: str | None = None

    @property
    def pair_key(self) -> tuple[str, int, int, str] | None:
        """Runs of two arms with the same key are matched: same maze, start (for a fork: the
        same fork point) and seed. In a batch the repetition fixes every arm's seed (and the
        sampling seed of models that take one), so there the key is the repetition; None
        when neither is known."""
        fork = "" if self.fork_of is None else f"fork of {self.fork_of} "
        if self.repetition is not None and self.batch_id is not None:
            return (self.maze_hash, *self.start, f"{fork}{self.batch_id} r{self.repetition}")
        if self.seed is not None:
            return (self.maze_hash, *self.start, f"{fork}seed {self.seed}")
        return None


def agent_text(provider: str, model: str) -> str:
    """A run's agent as a batch file names it: a built-in by name, a model as PROVIDER:MODEL."""
    return model if provider == "builtin" else f"{provider}:{model}"


def run_factors(facts: RunFacts, cell: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The run's factor values: its batch cell's when it has one (the batch's own agent
    labels), else read off the run (agent, endpoint, prompt, each option but the seed)."""
    if cell is not None:
        return cell_factors(cell)
    factors = {
        "agent": agent_text(facts.provider, facts.model),
        "endpoint": factor_text(facts.endpoint),
        "prompt": factor_text(facts.prompt_version),
    }
    for name in sorted(facts.options):
        if name != "seed":
            factors[name] = factor_text(facts.options[name])
    factors["maze"] = facts.maze_name
    start = f"({facts.start_x},{facts.start_y})"
    factors["start"] = start if facts.fork_of is None else f"fork of {facts.fork_of} at {start}"
    return factors


def _int_label(labels: Mapping[str, str], key: str) -> int | None:
    value = labels.get(key)
    return int(value) if value is not None and value.isdigit() else None


@lru_cache(maxsize=256)
def _place_facts(
    maze: Maze, start: tuple[int, int], vision_range: int
) -> tuple[frozenset[tuple[int, int]], int | None]:
    """The open tiles reachable from ``start`` and the fewest footsteps to see the goal:
    one search per place, however many runs start there."""
    open_reach = frozenset(
        (p.x, p.y) for p in reachable(maze, start) if maze.tile(p.x, p.y) != Tile.WALL
    )
    return open_reach, steps_to_see_goal(maze, start, vision_range)


def run_record(
    facts: RunFacts,
    actions: Sequence[ActionFacts],
    maze: Maze | None,
    cell: Mapping[str, Any] | None = None,
) -> RunRecord:
    """Derive a run's measurements from its row, its actions (in step order) and its maze
    (None when the maze is not archived: the maze-based measurements are then None)."""
    start = (facts.start_x, facts.start_y)
    visits: Counter[tuple[int, int]] = Counter([start])
    revisits = 0
    seen: set[tuple[int, int]] = set()
    for action in actions:
        if action.action_type in MOVES and action.success:
            tile = (action.to_x, action.to_y)
            revisits += tile in visits
            visits[tile] += 1
        for x, y, *_ in action.tiles_seen:
            seen.add((x, y))
    wall_bumps = sum(1 for a in actions if a.action_type in MOVES and not a.success)
    inference = [a.inference_ms for a in actions if a.inference_ms is not None]
    success = facts.goal_seen
    path_efficiency: float | None = None
    seen_share: float | None = None
    if maze is not None:
        open_reach, optimum = _place_facts(maze, start, facts.vision_range)
        seen.add(start)
        if open_reach:
            seen_share = len(open_reach & seen) / len(open_reach)
        if success and optimum and facts.footsteps:
            path_efficiency = optimum / facts.footsteps
    metrics: dict[str, float | None] = {
        "footsteps": facts.footsteps,
        "actions": facts.actions,
        "turns": facts.turns,
        "input_tokens": facts.input_tokens,
        "output_tokens": facts.output_tokens,
        "cost_usd": facts.cost_usd,
        "duration_s": facts.duration_s,
        "inference_s": sum(inference) / 1000 if inference else None,
        "path_efficiency": path_efficiency,
        "unique_tiles": len(visits),
        "revisit_ratio": revisits / facts.footsteps if facts.footsteps else None,
        "seen_share": seen_share,
        "wall_bumps": wall_bumps,
        "recalls": sum(1 for a in actions if a.action_type.startswith("recall")),
        "no_tool_turns": sum(1 for a in actions if a.action_type == "no_tool_call"),
    }
    return RunRecord(
        run_id=facts.run_id,
        factors=run_factors(facts, cell),
        maze_hash=facts.maze_hash,
        maze_name=facts.maze_name,
        start=start,
        seed=facts.seed,
        batch_id=facts.labels.get("batch_id"),
        cell=facts.labels.get("cell"),
        repetition=_int_label(facts.labels, "repetition"),
        status=facts.status,
        stop_reason=facts.stop_reason,
        success=success,
        goal_reached=facts.goal_reached,
        failed=facts.status == "failed",
        metrics=metrics,
        visits=visits,
        fork_of=facts.fork_of,
    )
