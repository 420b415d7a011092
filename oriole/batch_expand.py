"""Expanding a batch spec into admitted runs: the plan a scheduler launches, or every problem.

Pure: the maze catalogue is a look-up function and prices are a value, as in admission.
Cells are the cross product of the factor levels (`oriole.batch_levels`); built-in agents
ignore prompts and model options, so they get one cell per maze and start rather than one
per prompt and option combination. Each cell is repeated ``repetitions`` times; repetition
``r`` of a cell is run ``{batch_id}-{cell_id}-r{r}`` and differs from the others only by its
seed. Every run's start document goes through `oriole.admission.admit`, the one admission,
so a plan holds only runs a worker will accept; a batch with any problem plans nothing.

Runs are listed repetition-major (every cell once, then every cell again, ...), so a batch
stopped early by its budget still covers every cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oriole.admission import (
    ANY_ENDPOINT,
    Admitted,
    AllowedEndpoints,
    FindParent,
    admit,
    no_archive,
)
from oriole.batch_events import batch_run_id
from oriole.batch_levels import (
    AgentLevel,
    Cell,
    CellKey,
    MazeLevel,
    PromptLevel,
    StartLevel,
    agent_levels,
    factor_sizes,
    fork_levels,
    maze_levels,
    option_levels,
    prompt_levels,
    run_count,
    start_levels,
)
from oriole.batch_models import MAX_BATCH_RUNS, BatchSpec, parse_batch
from oriole.batch_review import (
    budget_warnings,
    describe,
    duplicate_cells,
    grouped_problems,
    grouped_warnings,
    ignored_settings,
    name_clashes,
    repetition_warnings,
)
from oriole.errors import ValidationError
from oriole.experiment import ExperimentStart, MazeData
from oriole.geometry import Position
from oriole.llm.pricing import PriceTable
from oriole.maze import Maze
from oriole.storable import text_problems

#: The longest run id (`oriole.schema_base.RunId`).
MAX_RUN_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run of the plan: repetition ``repetition`` of cell ``cell_id``, admitted."""

    run_id: str
    cell_id: str
    repetition: int
    request: ExperimentStart  # admitted: the maze embedded, the prompt text filled in


@dataclass(frozen=True, slots=True)
class BatchPlan:
    batch_id: str
    name: str
    spec: BatchSpec
    runs: list[PlannedRun]  # launch order: repetition-major
    cells: dict[str, dict[str, Any]]  # cell id -> factor values (see batch_review.describe)
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class BatchRejected:
    batch_id: str | None
    problems: list[tuple[str, str]]


def run_id_for(batch_id: str, cell_id: str, repetition: int) -> str:
    return batch_run_id(batch_id, cell_id, repetition)


def expand_batch(
    spec: BatchSpec | Mapping[str, Any],
    *,
    find_maze: Callable[[str], Maze],
    prices: PriceTable | None,
    endpoints: AllowedEndpoints = ANY_ENDPOINT,
    find_parent: FindParent = no_archive,
) -> BatchPlan | BatchRejected:
    """Every run of the batch, admitted, in launch order; or every problem (nothing planned).

    ``spec`` may be a decoded document (it is read as `parse_batch` reads it). ``prices``
    None means the built-in table; ``endpoints`` and ``find_parent`` (the parents of a
    batch of forks) as in `oriole.admission.admit`.
    """
    if not isinstance(spec, BatchSpec):
        parsed = parse_batch(spec)
        if not isinstance(parsed, BatchSpec):
            return BatchRejected(_document_id(spec), parsed)
        spec = parsed
    table = PriceTable.builtin() if prices is None else prices
    agents, problems = agent_levels(spec)
    options, option_problems = option_levels(spec, agents)
    problems += option_problems
    sizes = factor_sizes(spec)
    total = run_count(sizes)
    if total > MAX_BATCH_RUNS:  # checked before any maze is generated or run admitted
        return BatchRejected(spec.batch_id, [*problems, ("batch", _too_many(sizes, total))])
    prompts = prompt_levels(spec)
    if spec.mazes:
        mazes, maze_problems = maze_levels(spec, find_maze)
        starts, tiles, start_problems = start_levels(spec, mazes)
    else:  # a batch of forks (the spec allows nothing else without mazes)
        mazes, starts, tiles, start_problems = fork_levels(spec, find_parent)
        maze_problems = []
    problems += maze_problems + start_problems
    cells = _cells(agents, prompts, options, mazes, starts, tiles)
    universe = [cell.key for cell in cells]
    batch_id = spec.batch_id
    # Room for the suffix a scheduler adds to the id of a retried run (``-a2``..``-a11``).
    retry = len(f":a{spec.max_retries + 1}") if spec.max_retries else 0
    longest = retry + max(
        (len(run_id_for(batch_id, c.id, spec.repetitions - 1)) for c in cells), default=0
    )
    if longest > MAX_RUN_ID_LENGTH:
        spare = MAX_RUN_ID_LENGTH - (longest - len(batch_id))
        problems.append(
            (
                "batch_id",
                f"too long for the run ids: `{batch_id}:<cell>:r<n>` (with room for a retry "
                f"suffix) would be up to {longest} characters, at most {MAX_RUN_ID_LENGTH} are "
                f"allowed; use a batch id of at most {spare} characters",
            )
        )
        batch_id = "b"  # only to check the runs; nothing is planned
    lookup = {level.key: level.maze for level in mazes}

    def find(name: str) -> Maze:
        if name not in lookup:
            raise ValidationError("maze_name", f"no maze {name!r} in this batch")
        return lookup[name]

    shared = {level.index: MazeData.from_maze(level.maze) for level in mazes}
    runs: list[PlannedRun] = []
    first: dict[CellKey, ExperimentStart] = {}
    refused: set[CellKey] = set()
    cell_problems: list[tuple[CellKey, str, str]] = []
    notes: list[tuple[CellKey, str]] = []
    for repetition in range(spec.repetitions):
        for cell in cells:
            if cell.key in refused:  # its other repetitions would say the same
                continue
            run_id = run_id_for(batch_id, cell.id, repetition)
            document = _document(spec, cell, repetition, run_id, batch_id)
            verdict = admit(
                document, find, prices=table, endpoints=endpoints, find_parent=find_parent
            )
            if not isinstance(verdict, Admitted):
                refused.add(cell.key)
                cell_problems += [(cell.key, f, reason) for f, reason in verdict.problems]
                continue
            notes += [(cell.key, text) for text in verdict.warnings]
            request = verdict.request.model_copy(update={"maze": shared[cell.maze.index]})
            first.setdefault(cell.key, request)
            runs.append(PlannedRun(run_id, cell.id, repetition, request))
    if problems or cell_problems or not cells:
        if not cells and not problems:
            problems.append(("batch", "the grid has no cell"))
        return BatchRejected(spec.batch_id, problems + grouped_problems(cell_problems, universe))
    warnings = grouped_warnings(repetition_warnings(spec, cells), universe)
    warnings += ignored_settings(spec, cells)
    warnings += budget_warnings(spec, first, table)
    warnings += duplicate_cells(first)
    warnings += name_clashes(cells)
    warnings += grouped_warnings(dict.fromkeys(notes), universe)
    return BatchPlan(
        batch_id=spec.batch_id,
        name=spec.name,
        spec=spec,
        runs=runs,
        cells={cell.id: describe(cell, first[cell.key]) for cell in cells},
        warnings=warnings,
    )


def _cells(
    agents: list[AgentLevel],
    prompts: list[PromptLevel],
    options: list[dict[str, Any]],
    mazes: list[MazeLevel],
    starts: list[StartLevel],
    tiles: dict[tuple[int, int], Position | None],
) -> list[Cell]:
    """The cells, agents innermost (so that neighbouring runs spread over the providers)."""
    cells: list[Cell] = []
    for maze in mazes:
        for start in starts:
            if (maze.index, start.index) not in tiles:  # too few random starts: reported
                continue
            for prompt in prompts:
                for option_index, swept in enumerate(options):
                    for agent in agents:
                        key: list[tuple[str, int]] = [("a", agent.index)]
                        if agent.is_model:
                            if len(prompts) > 1:
                                key.append(("p", prompt.index))
                            if len(options) > 1:
                                key.append(("o", option_index))
                        elif prompt.index or option_index:
                            continue  # built-in agents ignore prompts and options
                        key.append(("m", maze.index))
                        if len(starts) > 1:
                            key.append(("s", start.index))
                        cells.append(
                            Cell(
                                key=tuple(key),
                                agent=agent,
                                prompt=prompt if agent.is_model else None,
                                options={**agent.options, **swept}
                                if agent.is_model
                                else agent.options,
                                maze=maze,
                                start=start,
                                tile=tiles[(maze.index, start.index)],
                            )
                        )
    return cells


def _document(
    spec: BatchSpec, cell: Cell, repetition: int, run_id: str, batch_id: str
) -> dict[str, Any]:
    """The start document of one run, as any client would publish it."""
    seed, options = cell.seeds(spec.seed, repetition)
    agent: dict[str, Any] = {
        "provider": cell.agent.provider,
        "model": cell.agent.model,
        "options": options,
    }
    if cell.agent.endpoint is not None:
        agent["endpoint"] = cell.agent.endpoint
    if seed is not None:
        agent["seed"] = seed
    document: dict[str, Any] = {
        "run_id": run_id,
        "maze_name": cell.maze.key,
        "agent": agent,
        "limits": spec.limits.model_dump(mode="json"),
        "rules": spec.rules.model_dump(mode="json"),
        "labels": {
            **spec.labels,
            "batch_id": batch_id,
            "cell": cell.id,
            "repetition": str(repetition),
        },
        "comment": spec.name if spec.comment is None else f"{spec.name}: {spec.comment}",
    }
    if cell.prompt is not None and cell.prompt.document is not None:
        document["prompt"] = cell.prompt.document
    fork = cell.start.fork
    if fork is not None:
        # The parent's maze, start and rules are the fork's: admission fills them in.
        del document["maze_name"], document["rules"]
        document["fork_of"] = {"run_id": fork.fork_of, "after_step": fork.at}
    elif cell.tile is not None:
        document["start"] = {"x": cell.tile.x, "y": cell.tile.y}
    return document


def _count(number: int, what: str) -> str:
    return f"{number:,} {what}" if number == 1 else f"{number:,} {what}s"


def _too_many(sizes: dict[str, int], total: int) -> str:
    builtin = sizes["built-in agents"]
    models = sizes["agents"] - builtin
    terms = []
    if models:
        terms.append(
            f"{_count(models, 'model agent')} x {_count(sizes['prompts'], 'prompt')} x "
            f"{_count(sizes['option combinations'], 'option combination')}"
        )
    if builtin:
        terms.append(_count(builtin, "built-in agent"))
    agents = terms[0] if len(terms) == 1 else f"({' + '.join(terms)})"
    return (
        f"the grid expands to {total:,} runs, more than {MAX_BATCH_RUNS:,}: {agents} x "
        f"{_count(sizes['mazes'], 'maze')} x {_count(sizes['starts'], 'start')} x "
        f"{_count(sizes['repetitions'], 'repetition')}; use fewer levels or split it into "
        "several batches"
    )


def _document_id(document: Mapping[str, Any]) -> str | None:
    value = document.get("batch_id")
    if isinstance(value, str) and 0 < len(value) <= MAX_RUN_ID_LENGTH and not text_problems(value):
        return value
    return None
