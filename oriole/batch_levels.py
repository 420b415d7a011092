"""The factor levels of a batch: its agents, prompts, option combinations, mazes and starts.

Each factor of a `BatchSpec` becomes a list of levels numbered from 0; a cell takes one
level of each, and its id names them (``a1-p0-o2-m3-s0``). Spec-level problems (an agent
name no provider serves, a maze that cannot be found or generated, too few start tiles)
are reported against the spec's own fields (``agents[1]``, ``mazes[2].params.density``);
a level with a problem is left out, so that the remaining cells can still be checked.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oriole import analysis
from oriole.admission import FindParent
from oriole.agent_names import split_agent_name
from oriole.agents.builtin import check_agent_spec
from oriole.batch_models import (
    AgentEntry,
    BatchSpec,
    EmbeddedMaze,
    FixedStart,
    ForkStart,
    GeneratedMazes,
    LibraryMaze,
    Problems,
    RandomStarts,
    sweep_values,
)
from oriole.errors import ValidationError
from oriole.experiment import MODEL_PROVIDERS, AgentSpec, ForkPoint, ProviderName
from oriole.fork import ForkRefused, fork_basis
from oriole.generators import generate
from oriole.geometry import Position
from oriole.maze import Maze
from oriole.rng import SeededRandom

#: Generator arguments that are not family parameters (errors on them name the entry's field).
_GENERATE_FIELDS = {"family": "generator", "width": "width", "height": "height"}


@dataclass(frozen=True, slots=True)
class AgentLevel:
    index: int
    provider: ProviderName
    model: str
    label: str
    options: dict[str, Any]  # the agent's own options (given ones only)
    endpoint: str | None
    seed: int | None  # a seed fixed for every repetition

    @property
    def is_model(self) -> bool:
        return self.provider in MODEL_PROVIDERS


@dataclass(frozen=True, slots=True)
class PromptLevel:
    index: int
    version: str | None  # None: the default prompt
    document: dict[str, Any] | None  # the run's `prompt` field


@dataclass(frozen=True, slots=True)
class MazeLevel:
    index: int
    entry: int  # index into spec.mazes
    maze: Maze
    key: str  # the name admission looks the maze up by (unique within the batch)


@dataclass(frozen=True, slots=True)
class StartLevel:
    index: int
    entry: int  # index into spec.starts
    text: str  # "default", "(3,4)", "random 2/5 (seed 0)", "fork of RUN after step K"
    fork: ForkStart | None = None  # every run of this level is a fork (docs/forks.md)


def agent_levels(spec: BatchSpec) -> tuple[list[AgentLevel], Problems]:
    levels: list[AgentLevel] = []
    problems: Problems = []
    for index, choice in enumerate(spec.agents):
        entry = choice if isinstance(choice, AgentEntry) else AgentEntry(agent=choice)
        field = f"agents[{index}]" if isinstance(choice, str) else f"agents[{index}].agent"
        try:
            provider, model = split_agent_name(entry.agent, field)
            check_agent_spec(AgentSpec(provider=provider, model=model))
        except ValidationError as exc:
            problems.append((field, exc.reason))
            continue
        except ValueError as exc:  # a model name AgentSpec refuses (e.g. too long)
            problems.append((field, str(exc).splitlines()[-1].strip()))
            continue
        if entry.seed is not None and provider in MODEL_PROVIDERS:
            problems.append(
                (
                    f"agents[{index}].seed",
                    "fixes a built-in agent's seed; a model's sampling seed is options.seed",
                )
            )
            continue
        label = entry.label or entry.agent.strip()
        options = entry.options.model_dump(exclude_none=True)
        levels.append(
            AgentLevel(index, provider, model, label, options, entry.endpoint, entry.seed)
        )
    return levels, problems


def prompt_levels(spec: BatchSpec) -> list[PromptLevel]:
    """The prompts (admission checks each version and text, per cell)."""
    if spec.prompts is None:
        return [PromptLevel(0, None, None)]
    levels: list[PromptLevel] = []
    for index, choice in enumerate(spec.prompts):
        if isinstance(choice, str):
            levels.append(PromptLevel(index, choice, {"version": choice}))
        else:
            levels.append(PromptLevel(index, choice.version, choice.model_dump(exclude_none=True)))
    return levels


def option_levels(
    spec: BatchSpec, agents: list[AgentLevel]
) -> tuple[list[dict[str, Any]], Problems]:
    """Every combination of the swept values (one empty combination without a sweep)."""
    swept = sweep_values(spec.sweep)
    problems: Problems = []
    for agent in agents:
        for option in sorted(set(agent.options) & set(swept)):
            problems.append(
                (
                    f"agents[{agent.index}].options.{option}",
                    f"also swept (sweep.{option}); give it in one place only",
                )
            )
    names = list(swept)
    combos = [
        dict(zip(names, values, strict=True)) for values in itertools.product(*swept.values())
    ]
    return combos, problems


def factor_sizes(spec: BatchSpec) -> dict[str, int]:
    """Levels per factor, counted without generating a maze (for the size cap)."""
    swept = sweep_values(spec.sweep)
    options = 1
    for values in swept.values():
        options *= len(values)
    # A batch of forks has no mazes of its own: each fork start plays its parent's one.
    mazes = sum(len(m.seeds) if isinstance(m, GeneratedMazes) else 1 for m in spec.mazes)
    builtin = 0
    for choice in spec.agents:
        name = choice.agent if isinstance(choice, AgentEntry) else choice
        with contextlib.suppress(ValidationError):
            builtin += split_agent_name(name)[0] not in MODEL_PROVIDERS
    return {
        "agents": len(spec.agents),
        "built-in agents": builtin,
        "prompts": 1 if spec.prompts is None else len(spec.prompts),
        "option combinations": options,
        "mazes": mazes or 1,
        "starts": sum(s.random if isinstance(s, RandomStarts) else 1 for s in spec.starts),
        "repetitions": spec.repetitions,
    }


def run_count(sizes: dict[str, int]) -> int:
    """Runs of a grid: built-in agents ignore prompts and options, so they are not multiplied."""
    builtin = sizes["built-in agents"]
    per_maze_start = builtin + (sizes["agents"] - builtin) * (
        sizes["prompts"] * sizes["option combinations"]
    )
    return per_maze_start * sizes["mazes"] * sizes["starts"] * sizes["repetitions"]


def maze_levels(
    spec: BatchSpec, find_maze: Callable[[str], Maze]
) -> tuple[list[MazeLevel], Problems]:
    """Every maze of the batch, looked up or generated (one level per generator seed)."""
    levels: list[MazeLevel] = []
    problems: Problems = []
    offset = 0  # level numbers do not shift when an earlier maze fails

    def add(entry_index: int, index: int, maze: Maze) -> None:
        levels.append(MazeLevel(index, entry_index, maze, f"batch-maze-{index}"))

    for entry_index, entry in enumerate(spec.mazes):
        field = f"mazes[{entry_index}]"
        if isinstance(entry, LibraryMaze):
            try:
                add(entry_index, offset, find_maze(entry.name))
            except ValidationError as exc:
                problems.append((f"{field}.name", exc.reason))
        elif isinstance(entry, EmbeddedMaze):
            add(entry_index, offset, entry.data.to_maze())
        else:
            for seed_index, seed in enumerate(entry.seeds):
                try:
                    maze = generate(
                        entry.generator, entry.width, entry.height, seed, **entry.params
                    )
                except ValidationError as exc:
                    if exc.field == "seed":
                        problems.append((f"{field}.seeds[{seed_index}]", exc.reason))
                        continue
                    where = _GENERATE_FIELDS.get(exc.field, f"params.{exc.field}")
                    problems.append((f"{field}.{where}", exc.reason))
                    break
                except TypeError as exc:  # a parameter named like one of generate's own
                    problems.append((f"{field}.params", str(exc)))
                    break
                add(entry_index, offset + seed_index, maze)
        offset += len(entry.seeds) if isinstance(entry, GeneratedMazes) else 1
    return levels, problems


def random_starts(
    maze: Maze, count: int, seed: int, vision_range: int, see_through: bool | None = None
) -> list[Position] | None:
    """``count`` distinct start tiles drawn from ``seed``: tiles from which the goal can be
    reached but is not yet in view. None if the maze has fewer such tiles.

    Deterministic (Oriole's own SplitMix64, tiles in row order) and prefix-stable: asking
    for more tiles with the same seed keeps the first ones.
    """
    seen = analysis.goal_viewpoints(maze, vision_range, see_through)
    candidates = sorted(
        (p for p in analysis.reachable(maze, maze.goal) if p not in seen),
        key=lambda p: (p.y, p.x),
    )
    if len(candidates) < count:
        return None
    rng = SeededRandom(seed)
    for i in range(count):  # a partial Fisher-Yates shuffle from the front
        j = i + rng.below(len(candidates) - i)
        candidates[i], candidates[j] = candidates[j], candidates[i]
    return candidates[:count]


def start_levels(
    spec: BatchSpec, mazes: list[MazeLevel]
) -> tuple[list[StartLevel], dict[tuple[int, int], Position | None], Problems]:
    """The start levels and, per (maze, start) level, the tile (None: Oriole's default)."""
    levels: list[StartLevel] = []
    tiles: dict[tuple[int, int], Position | None] = {}
    problems: Problems = []
    for entry_index, choice in enumerate(spec.starts):
        if isinstance(choice, RandomStarts):
            first = len(levels)
            for j in range(choice.random):
                text = f"random {j + 1}/{choice.random} (seed {choice.seed})"
                levels.append(StartLevel(first + j, entry_index, text))
            short: list[str] = []
            for level in mazes:
                drawn = random_starts(
                    level.maze,
                    choice.random,
                    choice.seed,
                    spec.rules.vision_range,
                    spec.rules.see_through_walls,
                )
                if drawn is None:
                    short.append(level.maze.name)
                    continue
                for j, drawn_tile in enumerate(drawn):
                    tiles[(level.index, first + j)] = drawn_tile
            if short:
                problems.append(
                    (
                        f"starts[{entry_index}].random",
                        f"fewer than {choice.random} tiles from which the goal can be reached "
                        f"but is not yet in view, in maze {', '.join(short)}",
                    )
                )
        else:
            index = len(levels)
            tile: Position | None
            if isinstance(choice, FixedStart):
                tile = Position(choice.at[0], choice.at[1])
                levels.append(StartLevel(index, entry_index, f"({choice.at[0]},{choice.at[1]})"))
            else:
                tile = None
                levels.append(StartLevel(index, entry_index, "default"))
            for level in mazes:
                tiles[(level.index, index)] = tile
    return levels, tiles, problems


def fork_levels(
    spec: BatchSpec, find_parent: FindParent
) -> tuple[list[MazeLevel], list[StartLevel], dict[tuple[int, int], Position | None], Problems]:
    """A batch of forks: per fork start, its parent's maze (a maze level of its own), the
    start level, and the tile it pairs with; every parent is read through ``find_parent``
    and each one that cannot be forked where asked is a problem of its start."""
    mazes: list[MazeLevel] = []
    starts: list[StartLevel] = []
    tiles: dict[tuple[int, int], Position | None] = {}
    problems: Problems = []
    for index, choice in enumerate(spec.starts):
        if not isinstance(choice, ForkStart):
            continue
        point = ForkPoint(run_id=choice.fork_of, after_step=choice.at)
        try:
            basis = fork_basis(find_parent(choice.fork_of), point)
        except ForkRefused as refused:
            field = "fork_of" if refused.field == "fork_of.run_id" else "at"
            problems.append((f"starts[{index}].{field}", refused.reason))
            continue
        parent = basis.spec
        maze = MazeLevel(len(mazes), -1, parent.maze.to_maze(), f"batch-fork-{index}")
        start = StartLevel(
            len(starts), index, f"fork of {choice.fork_of} after step {choice.at}", choice
        )
        mazes.append(maze)
        starts.append(start)
        tiles[(maze.index, start.index)] = parent.start.position()
    return mazes, starts, tiles, problems


#: Model providers that take ``options.seed`` (as `oriole.admission` knows them; a test checks).
SEEDED_PROVIDERS: frozenset[str] = frozenset({"ollama", "openai"})

#: A cell's levels as (factor letter, level index) pairs, e.g. (("a", 1), ("m", 0)).
CellKey = tuple[tuple[str, int], ...]


def cell_id(key: CellKey) -> str:
    return "-".join(f"{letter}{index}" for letter, index in key)


@dataclass(frozen=True, slots=True)
class Cell:
    """One combination of levels; built-in agents have no prompt and no swept options."""

    key: CellKey
    agent: AgentLevel
    prompt: PromptLevel | None
    options: dict[str, Any]  # the agent's options with the swept ones
    maze: MazeLevel
    start: StartLevel
    tile: Position | None  # None: Oriole's default start

    @property
    def id(self) -> str:
        return cell_id(self.key)

    def fixed_seed(self) -> int | None:
        """The seed every repetition shares, if the spec fixes one (else None)."""
        if not self.agent.is_model:
            return self.agent.seed
        seed = self.options.get("seed")
        return seed if self.agent.provider in SEEDED_PROVIDERS else None

    def seeds(self, base: int, repetition: int) -> tuple[int | None, dict[str, Any]]:
        """``agent.seed`` and ``agent.options`` of one repetition (``base + repetition`` unless
        the spec fixes a seed; a model provider without seeds gets none)."""
        if not self.agent.is_model:
            fixed = self.agent.seed
            return (base + repetition if fixed is None else fixed), self.options
        if self.agent.provider in SEEDED_PROVIDERS and "seed" not in self.options:
            return self.agent.seed, {**self.options, "seed": base + repetition}
        return self.agent.seed, self.options
