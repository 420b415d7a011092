"""Prometheus metrics of the stream processors (served on /metrics by `oriole worker`, and
with everything else by the gateway of `oriole up`; docs/metrics.md lists them all).

Labels stay bounded: provider, model, prompt version, stop reason, batch id of a running
batch — never a run id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

from oriole.batch_state import BatchState
from oriole.events import ModelCalled, RunEvent, RunFinished, RunStarted
from oriole.experiment import RunSpec
from oriole.run_state import RunState

COMMANDS = Counter(
    "oriole_commands_total",
    "Commands handled by the maze processor, by type and outcome.",
    ["type", "outcome"],
)
RUN_EVENTS = Counter(
    "oriole_run_events_written_total", "Run events written to the log, by type.", ["type"]
)
REJECTIONS = Counter("oriole_start_rejections_total", "Experiment-start events rejected.")
ACTIVE_RUNS = Gauge("oriole_active_runs", "Runs in progress owned by this process.", ["role"])
RUNS_IN_FLIGHT = Gauge(
    "oriole_runs_in_flight",
    "Runs in progress owned by this worker, by role (maze: the runs whose log it writes; "
    "agents: the runs it decides for).",
    ["role"],
)
INTENT_LATENCY = Histogram(
    "oriole_intent_to_outcome_seconds",
    "From an agent sending an intent to its outcome being decided.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DECISIONS = Counter(
    "oriole_agent_decisions_total", "Decisions made by agent runners, by provider.", ["provider"]
)
AGENT_FAILURES = Counter(
    "oriole_agent_failures_total", "Agents that failed, by error class.", ["error_class"]
)

# --- runs, counted where the maze processor writes their events -----------------------------

RUNS_STARTED = Counter(
    "oriole_runs_started_total",
    "Runs started (run.started written), by provider, model and prompt version.",
    ["provider", "model", "prompt_version"],
)
RUNS_FINISHED = Counter(
    "oriole_runs_finished_total",
    "Runs finished (run.finished written), by provider, model, prompt version and stop reason.",
    ["provider", "model", "prompt_version", "stop_reason"],
)
RUN_DURATION = Histogram(
    "oriole_run_duration_seconds",
    "Duration of finished runs (run.finished duration_seconds), by provider and model.",
    ["provider", "model"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
RUN_FOOTSTEPS = Histogram(
    "oriole_run_footsteps",
    "Footsteps (successful moves) of finished runs, by provider and model.",
    ["provider", "model"],
    buckets=(1, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000),
)
RUN_COST = Counter(
    "oriole_run_cost_usd_total",
    "Cost of model calls in USD (model.called cost_usd, as written), by provider and model.",
    ["provider", "model"],
)

# --- batches running in this scheduler ------------------------------------------------------

BATCH_RUNS = Gauge(
    "oriole_batch_runs",
    "Runs of a batch running in this scheduler, by state "
    "(planned, finished, succeeded, failed, in_flight); gone when the batch finishes.",
    ["batch_id", "state"],
)
BATCH_SPENT = Gauge(
    "oriole_batch_spent_usd", "USD spent by a running batch's ended runs.", ["batch_id"]
)
BATCH_BUDGET = Gauge(
    "oriole_batch_budget_usd", "USD budget of a running batch (only if it has one).", ["batch_id"]
)
BATCH_STATES = ("planned", "finished", "succeeded", "failed", "in_flight")
_shown_batches: set[str] = set()


def runs_in_flight(role: str, count: int) -> None:
    """The runs a part of the worker owns now (``oriole_active_runs`` too, kept for old
    dashboards)."""
    ACTIVE_RUNS.labels(role).set(count)
    RUNS_IN_FLIGHT.labels(role).set(count)


def _run_labels(spec: RunSpec) -> tuple[str, str, str]:
    version = spec.prompt.version if spec.prompt is not None else "none"
    return spec.agent.provider, spec.agent.model, version


def run_event_written(state: RunState, event: RunEvent) -> None:
    """Count what one event the maze processor wrote says about its run (``state`` has
    folded it already)."""
    if isinstance(event, RunStarted):
        RUNS_STARTED.labels(*_run_labels(event.payload.spec)).inc()
    elif isinstance(event, ModelCalled):
        call = event.payload
        if call.cost_usd:
            RUN_COST.labels(call.provider, call.model).inc(call.cost_usd)
    elif isinstance(event, RunFinished) and state.spec is not None:
        provider, model, version = _run_labels(state.spec)
        finished = event.payload
        RUNS_FINISHED.labels(provider, model, version, finished.stop_reason.value).inc()
        RUN_DURATION.labels(provider, model).observe(finished.duration_seconds)
        RUN_FOOTSTEPS.labels(provider, model).observe(finished.footsteps)


def show_batches(states: Mapping[str, BatchState], budgets: Mapping[str, float | None]) -> None:
    """Progress and spend of the batches running in this scheduler; the series of a batch that
    finished (or moved to another scheduler) are removed, so cardinality stays bounded.

    ``budgets``: each batch's budget in USD (None: it has none).
    """
    running = {batch_id: state for batch_id, state in states.items() if state.active}
    for batch_id in _shown_batches - running.keys():
        for kind in BATCH_STATES:
            _remove(BATCH_RUNS, batch_id, kind)
        _remove(BATCH_SPENT, batch_id)
        _remove(BATCH_BUDGET, batch_id)
    for batch_id, state in running.items():
        counts = state.counts()
        for kind in BATCH_STATES:
            BATCH_RUNS.labels(batch_id, kind).set(getattr(counts, kind))
        BATCH_SPENT.labels(batch_id).set(state.spent_usd)
        budget = budgets.get(batch_id)
        if budget is None:
            _remove(BATCH_BUDGET, batch_id)
        else:
            BATCH_BUDGET.labels(batch_id).set(budget)
    _shown_batches.clear()
    _shown_batches.update(running)


def _remove(metric: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
