"""Forking a run: the state an archived run had after one of its steps, as a new run's start.

A fork inherits its parent's *state* — maze, start, rules, position, tiles seen, visits, the
history of actions its agent sees (recall, the prompt's exploration history), the tally and
the model usage — by folding the parent's archived events with the one fold
(`oriole.run_state`). It does not inherit the parent model's conversation: a language model
in the fork starts a new conversation from that state, as after any other turn.

The inherited outcomes travel whole in the fork's `run.started` (`Inheritance`), so the
fork's own log rebuilds its state; ``state_hash`` and `inheritance_differences` let replay
verification re-derive them from the parent's archive and say where they differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from oriole.errors import OrioleError
from oriole.event_diff import leaf_differences
from oriole.events import (
    ActionCompleted,
    Inheritance,
    ModelCalled,
    OutcomePayload,
    RunEvent,
    RunFinished,
    RunStarted,
)
from oriole.experiment import ExperimentStart, ForkPoint, RunSpec
from oriole.rules import progress_of
from oriole.run_state import RunState
from oriole.stop_rules import Progress, check

#: Bytes of inherited outcomes a fork's `run.started` may carry (the topics take 16 MiB,
#: and a 1000x1000 maze in the same event takes about 3 MiB).
MAX_INHERITED_BYTES = 8 * 1024 * 1024


class ForkRefused(OrioleError):
    """The fork cannot start: ``field`` of the start event, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ForkBasis:
    """The parent at the fork point: its spec (maze, start, rules) and what the fork inherits."""

    spec: RunSpec
    inheritance: Inheritance
    #: What the stop rules would see before the fork's first action.
    progress: Progress


def fork_basis(parent: Sequence[RunEvent], point: ForkPoint) -> ForkBasis:
    """Fold ``parent`` (its whole archived log) up to ``point``; raises `ForkRefused`."""
    run_id = point.run_id
    if not parent:
        raise ForkRefused("fork_of.run_id", f"run {run_id} is not in the archive")
    if not isinstance(parent[-1], RunFinished):
        raise ForkRefused(
            "fork_of.run_id",
            f"run {run_id} has not finished (it is still running, or its last events are not "
            "archived yet): fork it once it has finished",
        )
    first = parent[0]
    earlier = _inherited_outcomes(first)
    if point.after_step < len(earlier):
        grandparent = first.payload.spec.fork_of if isinstance(first, RunStarted) else None
        assert grandparent is not None  # only a fork inherits outcomes
        raise ForkRefused(
            "fork_of.after_step",
            f"run {run_id} inherited steps 1-{len(earlier)} from run {grandparent.run_id}: "
            f"fork run {grandparent.run_id} at step {point.after_step} instead",
        )
    state = RunState(run_id)
    at_point: tuple[int, Progress, tuple[int, int, int]] | None = None
    outcomes = list(earlier)
    try:
        for event in parent:
            state.apply(event)
            if isinstance(event, ActionCompleted):
                outcomes.append(event.payload)
            if at_point is None and state.tally.actions == point.after_step:
                if isinstance(event, ModelCalled):
                    continue  # a call made after the fork point is not inherited
                tally = state.tally
                # The stop rules as the fork would see them before its first action.
                assert state.started_at is not None
                progress = progress_of(state, tally, state.position, state.started_at)
                usage = (tally.model_calls, tally.input_tokens, tally.output_tokens)
                at_point = (event.seq, progress, usage)
    except OrioleError as error:
        raise ForkRefused(
            "fork_of.run_id", f"the archive of run {run_id} is corrupt: {error}"
        ) from None
    spec = state.spec
    assert spec is not None  # a log that folded to its run.finished has started
    if at_point is None:
        total = state.tally.actions
        raise ForkRefused(
            "fork_of.after_step",
            f"run {run_id} has {total} step{'s' if total != 1 else ''}: "
            f"after_step must be between 0 and {total}",
        )
    seq, progress, usage = at_point
    # The lineage's outcomes: a parent that is itself a fork inherited its first ones.
    inherited_outcomes = outcomes[: point.after_step]
    body = {
        "parent_seq": seq,
        "lived_seq": seq + state.seq_offset,
        "outcomes": inherited_outcomes,
        "model_calls": usage[0],
        "input_tokens": usage[1],
        "output_tokens": usage[2],
        "cost_usd": progress.cost_usd,
    }
    inheritance = Inheritance(**body, state_hash=state_hash(point, body))
    size = sum(len(outcome.model_dump_json(by_alias=True)) for outcome in inherited_outcomes)
    if size > MAX_INHERITED_BYTES:
        raise ForkRefused(
            "fork_of.after_step",
            f"the history up to step {point.after_step} takes {size} bytes, over the "
            f"{MAX_INHERITED_BYTES} a start may carry: fork at an earlier step",
        )
    return ForkBasis(spec, inheritance, progress)


def _inherited_outcomes(first: RunEvent) -> list[OutcomePayload]:
    """The outcomes a parent that is itself a fork inherited (none for a plain run)."""
    if isinstance(first, RunStarted) and first.payload.inherited is not None:
        return list(first.payload.inherited.outcomes)
    return []


def state_hash(point: ForkPoint, body: dict[str, Any]) -> str:
    """sha256 of the inherited state in canonical JSON (sorted keys, no spaces)."""
    document = {
        "fork_of": point.model_dump(mode="json"),
        **{
            key: [o.model_dump(mode="json", by_alias=True) for o in value]
            if key == "outcomes"
            else value
            for key, value in body.items()
        },
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_hash(point: ForkPoint, inheritance: Inheritance) -> str:
    """The hash the recorded inheritance should carry, from its own content."""
    body = inheritance.model_dump(exclude={"state_hash"})
    body["outcomes"] = inheritance.outcomes
    return state_hash(point, body)


def fork_problems(request: ExperimentStart, basis: ForkBasis) -> Iterator[tuple[str, str]]:
    """What a fork's start asks that its parent's state cannot give (all of it)."""
    parent = basis.spec
    point = request.fork_of
    assert point is not None
    if request.maze is not None and request.maze.to_maze().content_hash != (
        parent.maze.to_maze().content_hash
    ):
        yield "maze", "a fork plays its parent's maze: leave `maze` out"
    if request.start is not None and request.start != parent.start:
        yield (
            "start",
            f"a fork starts where its parent did, ({parent.start.x},{parent.start.y}): "
            "leave `start` out",
        )
    if "rules" in request.model_fields_set and request.rules != parent.rules:
        yield (
            "rules",
            "a fork keeps its parent's rules of vision and memory (its tiles were seen under "
            "them): leave `rules` out",
        )
    stop = check(basis.progress, request.limits)
    if stop is not None:
        yield (
            "fork_of.after_step",
            f"run {point.run_id} at step {point.after_step} is where the fork would stop "
            f"before its first action ({stop.reason.value}: {stop.detail}; a fork's limits "
            "count its inherited steps): fork at an earlier step or raise that limit",
        )


def inheritance_differences(
    point: ForkPoint, recorded: Inheritance, parent: Sequence[RunEvent]
) -> list[tuple[str, Any, Any]]:
    """``(path, recorded, derived)`` where a fork's recorded inheritance is not what the
    parent's archive gives; a tampered record whose hash no longer matches is one too."""
    differences: list[tuple[str, Any, Any]] = []
    own = recorded_hash(point, recorded)
    if own != recorded.state_hash:
        differences.append(("inherited.state_hash", recorded.state_hash, own))
    try:
        derived = fork_basis(parent, point).inheritance
    except ForkRefused as refused:
        differences.append(("inherited", "inherited state", f"{refused.field}: {refused.reason}"))
        return differences
    differences.extend(
        leaf_differences(
            "inherited",
            recorded.model_dump(mode="json", by_alias=True),
            derived.model_dump(mode="json", by_alias=True),
        )
    )
    return differences
