"""What a user should hear about a batch before it spends money, said once per situation.

A problem or warning that concerns many cells is one line naming the cells by a pattern
(``cells a1-m*``: agent 1 on every maze) or, when no pattern fits, by a list. Warnings cover
repetitions that would be identical, budgets that cannot cover a run, settings that are
ignored, and the per-run warnings of admission (grouped the same way).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from oriole.batch_levels import SEEDED_PROVIDERS, Cell, CellKey, cell_id
from oriole.batch_models import BatchSpec, Problems
from oriole.experiment import MODEL_PROVIDERS, ExperimentStart
from oriole.llm.pricing import PriceTable

#: Cells named one by one before "and N more".
_LISTED = 12
#: Rough characters per token of English prompt text, for estimates only.
_CHARS_PER_TOKEN = 4


def _patterns(chosen: set[CellKey], universe: Sequence[CellKey]) -> list[str]:
    """Glob-like patterns (``a1-p*-m{0,2}``) that match exactly ``chosen``, else cell ids."""
    shapes: dict[tuple[str, ...], list[CellKey]] = defaultdict(list)
    for key in universe:
        shapes[tuple(letter for letter, _ in key)].append(key)
    parts: list[str] = []
    for shape, keys in shapes.items():
        selected = [key for key in keys if key in chosen]
        if not selected:
            continue
        levels = [sorted({key[i][1] for key in selected}) for i in range(len(shape))]
        every = [sorted({key[i][1] for key in keys}) for i in range(len(shape))]
        matched = [k for k in keys if all(k[i][1] in levels[i] for i in range(len(shape)))]
        if len(matched) != len(selected) or len(selected) == 1:
            parts.extend(cell_id(key) for key in selected)
            continue
        segments = []
        for letter, values, all_values in zip(shape, levels, every, strict=True):
            if values == all_values and len(values) > 1:
                segments.append(f"{letter}*")
            elif len(values) == 1:
                segments.append(f"{letter}{values[0]}")
            else:
                segments.append(f"{letter}{{{','.join(map(str, values))}}}")
        parts.append("-".join(segments))
    if len(parts) > _LISTED:
        parts = [*parts[:_LISTED], f"... ({len(parts) - _LISTED} more)"]
    return parts


def cells_text(chosen: Iterable[CellKey], universe: Sequence[CellKey]) -> str:
    """``every cell``, ``cell a1-m0``, ``cells a1-m*`` or ``cells a0-m1, a2-m3``."""
    selected = set(chosen)
    if len(universe) > 1 and selected == set(universe):
        return "every cell"
    parts = _patterns(selected, universe)
    return f"{'cell' if len(selected) == 1 else 'cells'} {', '.join(parts)}"


def cells_field(chosen: Iterable[CellKey], universe: Sequence[CellKey], field: str) -> str:
    """``cells.a1-m0.agent.options.temperature``; several cells: ``cells.{a1-m0,a2-m*}...``."""
    selected = set(chosen)
    parts = (
        ["*"] if len(universe) > 1 and selected == set(universe) else _patterns(selected, universe)
    )
    where = parts[0] if len(parts) == 1 else "{" + ",".join(parts) + "}"
    return f"cells.{where}.{field}"


def grouped_problems(
    found: Iterable[tuple[CellKey, str, str]], universe: Sequence[CellKey]
) -> Problems:
    """Per-cell ``(cell, field, reason)`` as one problem per (field, reason)."""
    groups: dict[tuple[str, str], set[CellKey]] = {}
    for key, field, reason in found:
        groups.setdefault((field, reason), set()).add(key)
    return [
        (cells_field(keys, universe, field), reason) for (field, reason), keys in groups.items()
    ]


def grouped_warnings(
    found: Iterable[tuple[CellKey, str]], universe: Sequence[CellKey]
) -> list[str]:
    """Per-cell warnings as one line per distinct text, prefixed by the cells it concerns."""
    groups: dict[str, set[CellKey]] = {}
    for key, text in found:
        groups.setdefault(text, set()).add(key)
    return [f"{cells_text(keys, universe)}: {text}" for text, keys in groups.items()]


def repetition_warnings(spec: BatchSpec, cells: Sequence[Cell]) -> list[tuple[CellKey, str]]:
    """Cells whose repetitions would be identical: a fixed seed, or greedy sampling."""
    count = spec.repetitions
    if count < 2:
        return []
    found: list[tuple[CellKey, str]] = []
    for cell in cells:
        agent = cell.agent
        fixed = cell.fixed_seed()
        if not agent.is_model:
            if fixed is not None:
                found.append(
                    (
                        cell.key,
                        f"{agent.label} has its seed fixed at {fixed}, so its {count} "
                        "repetitions will be identical (a built-in agent is deterministic "
                        "given its seed)",
                    )
                )
        elif cell.options.get("temperature") == 0:
            seeded = "the per-repetition seed does not change greedy sampling"
            if fixed is None and cell.agent.provider not in SEEDED_PROVIDERS:
                seeded = f"{agent.provider} takes no seed"
            found.append(
                (
                    cell.key,
                    f"{agent.label} at temperature 0 samples greedily, so its {count} "
                    f"repetitions are likely identical ({seeded})",
                )
            )
        elif fixed is not None:
            found.append(
                (
                    cell.key,
                    f"{agent.label} has options.seed fixed at {fixed}, so its {count} "
                    "repetitions are likely identical",
                )
            )
    return found


def duplicate_cells(first: dict[CellKey, ExperimentStart]) -> list[str]:
    """Cells that would run the same experiment (same agent, prompt, maze, start, limits)."""
    seen: dict[str, list[CellKey]] = defaultdict(list)
    for key, request in first.items():
        maze = request.maze
        fingerprint = request.model_dump_json(
            exclude={"run_id", "labels", "requested_at", "comment", "maze"}
        ) + ("" if maze is None else str(maze.content_hash))
        seen[fingerprint].append(key)
    return [
        f"cells {', '.join(cell_id(key) for key in keys[:_LISTED])}"
        f"{f' (and {len(keys) - _LISTED} more)' if len(keys) > _LISTED else ''} run the same "
        "experiment (same agent, options, prompt, maze and start): their results are not "
        "independent factor levels"
        for keys in seen.values()
        if len(keys) > 1
    ]


def ignored_settings(spec: BatchSpec, cells: Sequence[Cell]) -> list[str]:
    """Prompts and sweeps the built-in agents ignore; caps that name nothing in the batch."""
    warnings: list[str] = []
    builtin = sorted({c.agent.index for c in cells if not c.agent.is_model})
    models = {c.agent.provider for c in cells if c.agent.is_model}
    varied = [
        what
        for what, given in (
            ("prompts", spec.prompts is not None),
            ("sweep", bool(spec.sweep.model_dump(exclude_none=True))),
        )
        if given
    ]
    if builtin and varied:
        names = ", ".join(f"agents[{i}]" for i in builtin)
        if models:
            warnings.append(
                f"built-in agents ({names}) ignore {' and '.join(varied)}: they get one cell "
                "per maze and start, not one per prompt and option combination"
            )
        else:
            warnings.append(f"{' and '.join(varied)} ignored: every agent is built-in")
    providers = {c.agent.provider for c in cells}
    for provider in sorted(set(spec.caps.per_provider) - providers):
        warnings.append(f"caps.per_provider.{provider}: no agent of the batch uses {provider}")
    named = {c.agent.endpoint.rstrip("/") for c in cells if c.agent.endpoint is not None}
    for url in spec.caps.per_endpoint:
        if url.rstrip("/") not in named:
            warnings.append(
                f"caps.per_endpoint: no agent names {url} as its endpoint (runs without one "
                "use the worker's configured endpoint)"
            )
    limits = spec.limits
    if all(
        value is None
        for value in (
            limits.max_footsteps,
            limits.max_actions,
            limits.max_duration_seconds,
            limits.max_tokens,
            limits.max_cost_usd,
        )
    ):
        warnings.append("limits: every limit is off, so a run that never finds the goal never ends")
    return warnings


def _first_call(request: ExperimentStart) -> int:
    text = "" if request.prompt is None else request.prompt.text or ""
    return max(1, len(text) // _CHARS_PER_TOKEN)


def _names(requests: Iterable[ExperimentStart]) -> str:
    return ", ".join(sorted({f"{r.agent.provider}:{r.agent.model}" for r in requests}))


def _free(prices: PriceTable, request: ExperimentStart) -> bool:
    price = prices.price(request.agent.provider, request.agent.model)
    return price is None or price.cost(1_000_000, 1_000_000) == 0


def budget_warnings(
    spec: BatchSpec, first: dict[CellKey, ExperimentStart], prices: PriceTable
) -> list[str]:
    """A budget that limits nothing, or cannot cover one run (estimates: prompt tokens only)."""
    budget = spec.budget
    if budget is None:
        return []
    paid = [r for r in first.values() if r.agent.provider in MODEL_PROVIDERS]
    if not paid:
        return ["budget: built-in agents cost nothing and use no tokens, so it limits nothing"]
    warnings: list[str] = []
    limits = spec.limits
    if budget.usd is not None:
        free = [r for r in paid if _free(prices, r)]
        if free:
            warnings.append(
                f"budget.usd: {_names(free)} cost 0 USD by the price table (no price, or a "
                "price of 0), so the budget does not limit their runs"
            )
        costs: list[tuple[float, ExperimentStart]] = []
        for request in paid:
            price = prices.price(request.agent.provider, request.agent.model)
            if price is not None:
                costs.append((price.cost(_first_call(request), 0), request))
        cheapest = min(costs, key=lambda c: c[0], default=None)
        if cheapest is not None and 0 < budget.usd < cheapest[0]:
            cost, request = cheapest
            warnings.append(
                f"budget.usd {budget.usd:g} cannot cover even one run: the first model call "
                f"of the cheapest one ({_names([request])}, about {_first_call(request):,} "
                f"prompt tokens) costs about {cost:.6f} USD"
            )
        elif limits.max_cost_usd is not None and budget.usd < limits.max_cost_usd:
            warnings.append(
                f"budget.usd {budget.usd:g} is less than one run's limits.max_cost_usd "
                f"{limits.max_cost_usd:g}: a single run may spend all of it"
            )
    if budget.tokens is not None:
        fewest = min(_first_call(r) for r in paid)
        if budget.tokens < fewest:
            warnings.append(
                f"budget.tokens {budget.tokens:,} cannot cover even one run: the first model "
                f"call alone sends about {fewest:,} prompt tokens"
            )
        elif limits.max_tokens is not None and budget.tokens < limits.max_tokens:
            warnings.append(
                f"budget.tokens {budget.tokens:,} is less than one run's limits.max_tokens "
                f"{limits.max_tokens:,}: a single run may use all of it"
            )
    if limits.max_cost_usd is None and limits.max_tokens is None:
        warnings.append(
            "budget: runs have no limits.max_cost_usd or limits.max_tokens, so the runs in "
            "flight when the budget is spent may overshoot it by any amount"
        )
    return warnings


def name_clashes(cells: Sequence[Cell]) -> list[str]:
    """Different grids under one maze name: results grouped by maze name would mix them."""
    by_name: dict[str, dict[str, int]] = defaultdict(dict)
    for cell in cells:
        maze = cell.maze
        if maze.entry < 0:  # a fork's parent's maze: its start names the run, not the maze
            continue
        by_name[maze.maze.name].setdefault(maze.maze.content_hash, maze.entry)
    return [
        f"mazes[{', '.join(map(str, sorted(set(entries.values()))))}]: different mazes named "
        f"{name!r}; results grouped by maze name will mix them"
        for name, entries in by_name.items()
        if len(entries) > 1
    ]


def describe(cell: Cell, request: ExperimentStart) -> dict[str, Any]:
    """A cell's factor values, for people and result tables."""
    agent = request.agent
    prompt = None if request.prompt is None else request.prompt.version
    start = cell.start.text
    if cell.tile is not None and cell.start.text != f"({cell.tile.x},{cell.tile.y})":
        start = f"{start} at ({cell.tile.x},{cell.tile.y})"
    return {
        "agent": cell.agent.label,
        "provider": agent.provider,
        "model": agent.model,
        "endpoint": agent.endpoint,
        "prompt": prompt,
        "options": {k: v for k, v in cell.options.items()},
        "maze": cell.maze.maze.name,
        "start": start,
    }
