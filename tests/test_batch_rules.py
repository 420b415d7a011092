"""The batch scheduler's pure decisions: caps, retries, budget, cancel, the end, the fold."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from oriole.batch_events import (
    BatchCancel,
    BatchRunEnded,
    BatchStarted,
    BatchStartedPayload,
    BatchStopReason,
    PlannedRunRef,
    attempt_run_id,
    batch_of_run,
    batch_run_id,
)
from oriole.batch_rules import BatchPolicy, RunSlot, budget_refusal, cancel, launches, run_ended
from oriole.batch_state import BatchLogGap, BatchState, fold_batch
from oriole.events import FieldProblem, RunFinishedPayload, StopReason
from oriole.schema_base import Point

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BATCH = "batch-test"


def started(cells: int, repetitions: int = 1) -> tuple[BatchState, dict[str, RunSlot]]:
    refs = [
        PlannedRunRef(run_id=batch_run_id(BATCH, f"c{c}", r), cell=f"c{c}", repetition=r)
        for r in range(repetitions)
        for c in range(cells)
    ]
    state = BatchState(BATCH)
    state.apply(
        BatchStarted(
            batch_id=BATCH,
            seq=1,
            time=NOW,
            payload=BatchStartedPayload(name="t", spec={}, runs=refs, cells={}),
        )
    )
    slots = {
        ref.run_id: RunSlot(
            cell=ref.cell,
            repetition=ref.repetition,
            provider="ollama" if ref.cell == "c0" else "builtin",
            endpoint="http://gpu-1:11434" if ref.cell == "c0" else None,
            max_cost_usd=None,
            max_tokens=None,
        )
        for ref in refs
    }
    return state, slots


def finished(
    run_id: str, *, reason: StopReason = StopReason.GOAL_SEEN, cost: float = 0.0
) -> BatchRunEnded:
    return BatchRunEnded(
        batch_id=BATCH,
        run_id=run_id,
        finished=RunFinishedPayload(
            stop_reason=reason,
            detail="",
            success=reason.is_success,
            goal_seen=reason.is_success,
            goal_reached=False,
            position=Point(x=1, y=1),
            footsteps=3,
            actions=3,
            turns=3,
            model_calls=1 if cost else 0,
            input_tokens=100 if cost else 0,
            output_tokens=10 if cost else 0,
            cost_usd=cost,
            duration_seconds=1.0,
        ),
    )


def test_run_ids_carry_their_batch_and_only_batch_runs_do() -> None:
    assert batch_run_id("b-1", "a0-m1", 2) == "b-1:a0-m1:r2"
    assert attempt_run_id(batch_run_id("b-1", "a0-m1", 2), 3) == "b-1:a0-m1:r2:a3"
    assert attempt_run_id("b-1:a0-m1:r2", 1) == "b-1:a0-m1:r2"
    assert batch_of_run("b-1:a0-m1:r2:a3") == "b-1"
    assert batch_of_run("run-1234") is None
    assert batch_of_run("exp:1") is None


def test_launches_respect_the_caps_and_every_end_frees_a_place() -> None:
    state, slots = started(cells=3, repetitions=4)
    policy = BatchPolicy(max_in_flight=4, per_provider={"ollama": 1})
    events, chosen = launches(state, policy, slots, NOW)
    assert len(chosen) == 4
    assert sum(1 for launch in chosen if slots[launch.planned_run_id].provider == "ollama") == 1
    assert [e.seq for e in events] == [2, 3, 4, 5]
    most_in_flight = len(state.in_flight)
    while state.active:
        ended = next(iter(state.in_flight))
        run_ended(state, policy, finished(ended), NOW)
        launches(state, policy, slots, NOW)
        most_in_flight = max(most_in_flight, len(state.in_flight))
    assert most_in_flight == 4
    assert state.finished is not None
    assert state.finished.stop_reason == BatchStopReason.COMPLETED
    counts = state.finished.counts
    assert (counts.planned, counts.finished, counts.succeeded, counts.launched) == (12, 12, 12, 12)


def test_a_failed_run_is_retried_up_to_the_limit_under_a_new_run_id() -> None:
    state, slots = started(cells=1)
    policy = BatchPolicy(max_in_flight=2, max_retries=2)
    _, chosen = launches(state, policy, slots, NOW)
    for attempt in (1, 2, 3):
        assert [launch.attempt for launch in chosen] == [attempt]
        run_ended(state, policy, finished(chosen[0].run_id, reason=StopReason.FAILED), NOW)
        _, chosen = launches(state, policy, slots, NOW)
    assert state.finished is not None
    assert state.finished.stop_reason == BatchStopReason.FAILED
    assert sorted(state.ended) == [
        "batch-test:c0:r0",
        "batch-test:c0:r0:a2",
        "batch-test:c0:r0:a3",
    ]


def test_a_duplicate_notice_or_a_duplicate_run_id_rejection_changes_nothing() -> None:
    state, slots = started(cells=2)
    policy = BatchPolicy(max_in_flight=2)
    _, chosen = launches(state, policy, slots, NOW)
    duplicate = BatchRunEnded(
        batch_id=BATCH,
        run_id=chosen[0].run_id,
        problems=[FieldProblem(field="run_id", reason="duplicate run id: run exists")],
    )
    assert run_ended(state, policy, duplicate, NOW) == []
    assert len(run_ended(state, policy, finished(chosen[0].run_id), NOW)) == 2
    assert run_ended(state, policy, finished(chosen[0].run_id), NOW) == []
    assert state.counts().finished == 1


def test_the_budget_stops_launching_and_says_why() -> None:
    state, slots = started(cells=1, repetitions=10)
    policy = BatchPolicy(max_in_flight=5, budget_usd=1.0)
    _, chosen = launches(state, policy, slots, NOW)
    assert len(chosen) == 1  # no run's cost is known yet: one at a time
    spent = 0.0
    while state.active:
        for run_id in list(state.in_flight):
            run_ended(state, policy, finished(run_id, cost=0.3), NOW)
            spent += 0.3
        launches(state, policy, slots, NOW)
    assert state.finished is not None
    assert state.finished.stop_reason == BatchStopReason.BUDGET
    assert "the next run could spend up to $0.3" in state.finished.detail
    assert state.spent_usd <= 1.0 + 0.3


def test_a_run_cost_limit_is_its_worst_case() -> None:
    state, slots = started(cells=1, repetitions=10)
    slots = {k: dataclasses.replace(v, max_cost_usd=0.25) for k, v in slots.items()}
    policy = BatchPolicy(max_in_flight=10, budget_usd=1.0)
    _, chosen = launches(state, policy, slots, NOW)
    assert len(chosen) == 4
    next_slot = slots[state.waiting()[0][0]]
    assert budget_refusal(state, policy, slots, next_slot) is not None


def test_cancel_finishes_the_batch_and_names_the_runs_to_cancel() -> None:
    state, slots = started(cells=3)
    policy = BatchPolicy(max_in_flight=2)
    _, chosen = launches(state, policy, slots, NOW)
    _, in_flight = cancel(state, BatchCancel(batch_id=BATCH, requested_by="alice"), NOW)
    assert sorted(in_flight) == sorted(launch.run_id for launch in chosen)
    assert state.finished is not None and state.finished.stop_reason == BatchStopReason.CANCELLED
    assert "alice" in state.finished.detail
    assert launches(state, policy, slots, NOW) == ([], [])


def test_the_fold_skips_what_it_has_seen_and_refuses_a_gap() -> None:
    state, slots = started(cells=3)
    policy = BatchPolicy(max_in_flight=3)
    events, _ = launches(state, policy, slots, NOW)
    first = events[0]
    again = fold_batch(BATCH, [*_started_events(state), *events, first])
    assert again.in_flight == state.in_flight
    with pytest.raises(BatchLogGap):
        fold_batch(BATCH, [*_started_events(state), events[1]])


def _started_events(state: BatchState) -> list[BatchStarted]:
    assert state.started is not None
    return [BatchStarted(batch_id=BATCH, seq=1, time=NOW, payload=state.started)]
