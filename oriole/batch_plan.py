"""A batch's plan as the scheduler uses it: admitted starts, caps, budget, per-run slots.

`oriole.batch_spec.expand_batch` does the admission; this module turns its plan into what
`oriole.batch_rules` decides over. Pure and deterministic: a scheduler that takes a batch
over after a crash plans it again from the spec recorded in ``batch.started`` and gets the
same runs under the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oriole.admission import ANY_ENDPOINT, AllowedEndpoints, FindParent, no_archive
from oriole.batch_rules import BatchPolicy, RunSlot
from oriole.batch_spec import BatchRejected, expand_batch
from oriole.comparison.stopping import SequentialDesign, sequential_design
from oriole.experiment import ExperimentStart
from oriole.llm.pricing import PriceTable
from oriole.maze import Maze


@dataclass(frozen=True, slots=True)
class BatchPlan:
    name: str
    labels: dict[str, str]
    #: (planned run id, cell id, repetition) in launch order.
    order: list[tuple[str, str, int]]
    cells: dict[str, dict[str, Any]]
    warnings: list[str]
    policy: BatchPolicy
    slots: dict[str, RunSlot]
    requests: dict[str, ExperimentStart]


def plan_batch(
    spec: Mapping[str, Any],
    batch_id: str,
    *,
    find_maze: Callable[[str], Maze],
    prices: PriceTable | None,
    endpoints: AllowedEndpoints = ANY_ENDPOINT,
    find_parent: FindParent = no_archive,
) -> BatchPlan | list[tuple[str, str]]:
    """The plan of ``spec`` under ``batch_id`` (the request's id wins over the spec's own),
    or every problem with it. The ``sequential`` option's arms are checked against the cells,
    so only once the grid itself has no problem."""
    expanded = expand_batch(
        {**spec, "batch_id": batch_id},
        find_maze=find_maze,
        prices=prices,
        endpoints=endpoints,
        find_parent=find_parent,
    )
    if isinstance(expanded, BatchRejected):
        return expanded.problems
    parsed = expanded.spec
    order = [(run.run_id, run.cell_id, run.repetition) for run in expanded.runs]
    design: SequentialDesign | None = None
    if parsed.sequential is not None:
        found = sequential_design(parsed.sequential, expanded.cells, order)
        if not isinstance(found, SequentialDesign):
            return found
        design = found
    budget = parsed.budget
    policy = BatchPolicy(
        max_in_flight=parsed.caps.max_in_flight,
        per_provider={str(k): v for k, v in parsed.caps.per_provider.items()},
        per_endpoint=dict(parsed.caps.per_endpoint),
        budget_usd=None if budget is None else budget.usd,
        budget_tokens=None if budget is None else budget.tokens,
        max_retries=parsed.max_retries,
        sequential=design,
    )
    slots = {
        run.run_id: RunSlot(
            cell=run.cell_id,
            repetition=run.repetition,
            provider=run.request.agent.provider,
            endpoint=run.request.agent.endpoint,
            max_cost_usd=run.request.limits.max_cost_usd,
            max_tokens=run.request.limits.max_tokens,
        )
        for run in expanded.runs
    }
    return BatchPlan(
        name=expanded.name,
        labels=dict(parsed.labels),
        order=order,
        cells=expanded.cells,
        warnings=expanded.warnings,
        policy=policy,
        slots=slots,
        requests={run.run_id: run.request for run in expanded.runs},
    )
