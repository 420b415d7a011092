"""Run events -> table rows: the pure half of the projector (no I/O).

Each function maps typed events to tuples in the column order of the matching SQL statement
in :mod:`projections.store`. An action row joins three events: the outcome
(`action.completed`), its decision (always the event just before it) and, for the first
action of a model call, the `model.called` event just before the decision. Events outside
the batch being projected are looked up in the archive, so a batch may start or end
anywhere in a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic_core

from oriole.errors import OrioleError
from oriole.events import (
    ActionCompleted,
    ActionRequested,
    ModelCalled,
    RunEvent,
    RunFinished,
    RunStarted,
    StopReason,
    parse_run_event,
)
from oriole.experiment import ForkPoint
from oriole.intents import ModelCall

#: ``(run_id, seq)``: the archive's key of an event.
EventKey = tuple[str, int]

Row = tuple[Any, ...]


class ProjectionError(OrioleError):
    """The events do not have the shape the projections rely on (a corrupt log)."""


def status_of(stop_reason: StopReason | str | None, success: bool | None) -> str:
    """The experiment's status column for a finished run (also from raw event JSON)."""
    if success is True:
        return "succeeded"
    if stop_reason == StopReason.FAILED:
        return "failed"
    if stop_reason == StopReason.CANCELLED:
        return "cancelled"
    return "stopped"


def archive_row(event: RunEvent, run_started_at: datetime | None = None) -> Row:
    """``run_events`` columns: run_id, seq, event_id, type, schema_version, time, payload,
    run_started_at (the run's partition key; the archive needs it, comparisons may omit it)."""
    return (
        event.run_id,
        event.seq,
        event.event_id,
        event.type,
        event.schema_version,
        event.time,
        event.payload.model_dump_json(by_alias=True),
        run_started_at,
    )


def keys_from_events(events: Iterable[RunEvent]) -> dict[str, datetime]:
    """Each run's partition key as the events alone tell it: its ``run.started`` time, else
    (a log whose start is elsewhere) its earliest event's time."""
    started: dict[str, datetime] = {}
    earliest: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, RunStarted):
            started.setdefault(event.run_id, event.time)
        seen = earliest.get(event.run_id)
        if seen is None or event.time < seen:
            earliest[event.run_id] = event.time
    return earliest | started


def event_from_archive(record: Mapping[str, Any]) -> RunEvent:
    """The typed event back from a ``run_events`` row (payload as JSON text or a dict)."""
    payload = record["payload"]
    if not isinstance(payload, str):
        payload = to_json(payload)
    # One JSON document for pydantic's parser: much faster than json.loads + validation.
    envelope = (
        f'{{"event_id":"{record["event_id"]}","run_id":{json.dumps(record["run_id"])},'
        f'"seq":{int(record["seq"])},"schema_version":{int(record["schema_version"])},'
        f'"time":"{record["time"].isoformat()}","type":{json.dumps(record["type"])},'
        f'"payload":{payload}}}'
    )
    return parse_run_event(envelope)


def to_json(value: Any) -> str:
    """Compact JSON text for a JSONB parameter (pydantic-core's encoder: fast)."""
    return pydantic_core.to_json(value).decode()


def needed_context(events: Iterable[RunEvent]) -> set[EventKey]:
    """Keys of the earlier events the projection of ``events`` joins with."""
    keys: set[EventKey] = set()
    for event in events:
        if isinstance(event, ActionCompleted):
            keys.add((event.run_id, event.seq - 1))
            if event.seq > 2:
                keys.add((event.run_id, event.seq - 2))
        elif isinstance(event, RunFinished) and event.seq > 1:
            keys.add((event.run_id, event.seq - 1))
    return keys


@dataclass
class ProjectionRows:
    """Everything one batch writes besides the archive, in statement order."""

    mazes: list[Row] = field(default_factory=list)
    experiments: list[Row] = field(default_factory=list)
    model_calls: list[Row] = field(default_factory=list)
    actions: list[Row] = field(default_factory=list)
    progress: list[Row] = field(default_factory=list)
    finishes: list[Row] = field(default_factory=list)
    #: Runs whose token totals must be recomputed from ``model_calls``, with their keys.
    runs_with_calls: dict[str, datetime] = field(default_factory=dict)
    #: Events that could not be projected (a corrupt log); they stay in the archive.
    problems: list[str] = field(default_factory=list)


def project(
    events: list[RunEvent],
    context: Mapping[EventKey, RunEvent],
    keys: Mapping[str, datetime] | None = None,
) -> ProjectionRows:
    """Rows for ``events`` (ordered by seq within each run); ``context`` has the joins, and
    ``keys`` each run's partition key (:mod:`projections.run_keys`; from the events when
    not given)."""
    rows = ProjectionRows()
    if keys is None:
        keys = keys_from_events([*context.values(), *events])
    known: dict[EventKey, RunEvent] = dict(context)
    for event in events:
        known[(event.run_id, event.seq)] = event
    # Per run: the latest outcome in the batch, and whether any outcome in it saw the goal.
    latest: dict[str, ActionCompleted] = {}
    goal_seen: dict[str, bool] = {}
    goal_reached: dict[str, bool] = {}
    for event in events:
        if isinstance(event, RunStarted):
            rows.mazes.append(maze_row(event))
            rows.experiments.append(experiment_row(event))
        elif isinstance(event, ActionCompleted):
            try:
                decision = _decision_for(event, known)
                call = _call_for(event, decision, known)
            except ProjectionError as exc:
                rows.problems.append(str(exc))
                continue
            key = keys[event.run_id]
            rows.actions.append(action_row(event, decision, call, key))
            if call is not None:
                rows.model_calls.append(model_call_row(call, decision.payload.turn, key))
                rows.runs_with_calls[event.run_id] = key
            latest[event.run_id] = event
            outcome = event.payload
            goal_seen[event.run_id] = goal_seen.get(event.run_id, False) or outcome.goal_seen
            goal_reached[event.run_id] = (
                goal_reached.get(event.run_id, False) or outcome.goal_reached
            )
        elif isinstance(event, RunFinished):
            before = known.get((event.run_id, event.seq - 1))
            if isinstance(before, ModelCalled):  # a failure that still used a model call
                rows.model_calls.append(
                    model_call_row(before, event.payload.turns, keys[event.run_id])
                )
                rows.runs_with_calls[event.run_id] = keys[event.run_id]
            rows.finishes.append(finish_row(event, keys[event.run_id]))
    for run_id, event in latest.items():
        outcome = event.payload
        rows.progress.append(
            (
                run_id,
                event.time,
                outcome.step,
                outcome.footsteps,
                outcome.turn,
                outcome.to.x,
                outcome.to.y,
                goal_seen[run_id],
                goal_reached[run_id],
                event.seq,
            )
        )
    return rows


def _decision_for(event: ActionCompleted, known: Mapping[EventKey, RunEvent]) -> ActionRequested:
    decision = known.get((event.run_id, event.seq - 1))
    if not isinstance(decision, ActionRequested):
        found = "nothing" if decision is None else decision.type
        raise ProjectionError(
            f"run {event.run_id}: action.completed at seq {event.seq} must follow its "
            f"action.requested, found {found} at seq {event.seq - 1}"
        )
    if decision.payload.action != event.payload.action:
        raise ProjectionError(
            f"run {event.run_id}: action.completed at seq {event.seq} is a "
            f"{event.payload.action.value} but its decision asked for "
            f"{decision.payload.action.value}"
        )
    return decision


def _call_for(
    event: ActionCompleted, decision: ActionRequested, known: Mapping[EventKey, RunEvent]
) -> ModelCalled | None:
    call_id = decision.payload.call_id
    if call_id is None:
        return None
    call = known.get((event.run_id, event.seq - 2))
    if not isinstance(call, ModelCalled) or call.payload.call_id != call_id:
        raise ProjectionError(
            f"run {event.run_id}: the decision at seq {decision.seq} names model call "
            f"{call_id!r}, which is not the event before it"
        )
    return call


# --- one function per table ---------------------------------------------------------------


def maze_row(event: RunStarted) -> Row:
    maze = event.payload.spec.maze
    content = maze.to_maze()
    generator = None if maze.generator is None else maze.generator.model_dump_json()
    return (
        content.content_hash,
        maze.name,
        maze.width,
        maze.height,
        to_json(maze.grid_data),
        maze.see_through_walls,
        content.goal.x,
        content.goal.y,
        generator,
        event.time,
    )


def model_config(event: RunStarted) -> dict[str, Any]:
    """Everything that configures the run, flat, for JSONB containment queries.

    Unset options are left out; zero values stay zero (Oriole stored temperature 0.0 as NULL).
    """
    spec = event.payload.spec
    config: dict[str, Any] = {"provider": spec.agent.provider, "model": spec.agent.model}
    if spec.agent.endpoint is not None:
        config["endpoint"] = spec.agent.endpoint
    if spec.agent.seed is not None:
        config["seed"] = spec.agent.seed
    config.update(spec.agent.options.model_dump(exclude_none=True))
    config.update(spec.rules.model_dump(exclude_none=True))
    config.update(spec.limits.model_dump(exclude_none=True))
    if spec.prompt is not None:
        config["prompt_version"] = spec.prompt.version
    return config


def experiment_row(event: RunStarted) -> Row:
    spec = event.payload.spec
    options = spec.agent.options
    limits = spec.limits
    return (
        event.run_id,
        spec.agent.provider,
        spec.agent.model,
        spec.agent.endpoint,
        None if spec.prompt is None else spec.prompt.version,
        None if spec.prompt is None else spec.prompt.text,
        spec.maze.to_maze().content_hash,
        spec.maze.name,
        spec.start.x,
        spec.start.y,
        spec.comment,
        to_json(spec.labels),
        to_json(event.payload.warnings),
        spec.rerun_of,
        to_json(model_config(event)),
        options.temperature,
        options.num_ctx,
        options.max_output_tokens,
        options.repeat_penalty,
        options.top_p,
        options.top_k,
        spec.rules.vision_range,
        spec.rules.max_actions_per_turn,
        limits.max_footsteps,
        limits.max_actions,
        limits.max_duration_seconds,
        limits.max_tokens,
        limits.max_cost_usd,
        limits.goal_rule,
        spec.requested_at,
        event.time,
        "running",
        spec.start.x,
        spec.start.y,
        event.seq,
        *fork_columns(spec.fork_of),
    )


def fork_columns(fork_of: ForkPoint | None) -> tuple[str | None, int | None]:
    """``experiments.forked_from`` and ``fork_step``: the parent and its step (lineage)."""
    return (None, None) if fork_of is None else (fork_of.run_id, fork_of.after_step)


def action_row(
    event: ActionCompleted,
    decision: ActionRequested,
    call: ModelCalled | None,
    run_started_at: datetime,
) -> Row:
    outcome = event.payload
    asked = decision.payload
    usage: ModelCall | None = None if call is None else call.payload
    return (
        event.run_id,
        outcome.step,
        event.seq,
        outcome.turn,
        outcome.action.value,
        asked.tool_name,
        None if asked.arguments is None else to_json(asked.arguments),
        asked.reasoning,
        asked.depth,
        asked.problem,
        asked.assistant_message,
        outcome.from_.x,
        outcome.from_.y,
        outcome.to.x,
        outcome.to.y,
        outcome.success,
        to_json(outcome.tiles_seen),
        outcome.goal_seen,
        outcome.goal_reached,
        outcome.footsteps,
        outcome.message,
        to_json(outcome.result),
        asked.call_id,
        None if usage is None else usage.input_tokens,
        None if usage is None else usage.output_tokens,
        None if usage is None else usage.cost_usd,
        None if usage is None else usage.duration_ms,
        None if usage is None else usage.prompt_eval_ms,
        None if usage is None else usage.eval_ms,
        None if usage is None else usage.tokens_per_second,
        None if usage is None else usage.done_reason,
        asked.sent_at,
        decision.time,
        event.time,
        run_started_at,
    )


def model_call_row(event: ModelCalled, turn: int | None, run_started_at: datetime) -> Row:
    call = event.payload
    return (
        event.run_id,
        event.seq,
        call.call_id,
        turn,
        call.provider,
        call.model,
        call.input_tokens,
        call.output_tokens,
        call.cost_usd,
        call.duration_ms,
        call.prompt_eval_ms,
        call.eval_ms,
        call.tokens_per_second,
        call.done_reason,
        call.attempts,
        call.endpoint,
        call.context_trimmed,
        event.time,
        run_started_at,
    )


def finish_row(event: RunFinished, run_started_at: datetime) -> Row:
    end = event.payload
    error = end.error
    return (
        event.run_id,
        status_of(end.stop_reason, end.success),
        end.stop_reason.value,
        end.detail,
        end.success,
        end.goal_seen,
        end.goal_reached,
        end.position.x,
        end.position.y,
        end.footsteps,
        end.actions,
        end.turns,
        end.model_calls,
        end.input_tokens,
        end.output_tokens,
        end.cost_usd,
        end.duration_seconds,
        None if error is None else error.error_class,
        None if error is None else error.message,
        event.time,
        event.seq,
        run_started_at,
    )
