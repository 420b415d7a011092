"""What a batch scheduler does next: pure decisions over a :class:`BatchState`.

Each function takes the state, appends the events it decides on (folding them into the
state as it goes, so the next decision sees them) and returns them; the shell writes them
to the batch's log before it acts on them (publishes a start, cancels a run), so a crash
between the two repeats the action, never loses it — and a repeated start is refused by its
deterministic run id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from oriole.batch_events import (
    BatchCancel,
    BatchEvent,
    BatchFinished,
    BatchFinishedPayload,
    BatchProgress,
    BatchRunEnded,
    BatchStopReason,
    ComparisonEvidence,
    RunEnded,
    RunEndedPayload,
    RunLaunched,
    RunLaunchedPayload,
    attempt_run_id,
)
from oriole.batch_state import BatchState
from oriole.comparison.sequential import Evidence
from oriole.comparison.stopping import SequentialDesign, verdict
from oriole.events import DUPLICATE_RUN_ID, StopReason


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """The spec's caps, budget, retry limit and sequential design, as the rules need them."""

    max_in_flight: int
    per_provider: Mapping[str, int] = field(default_factory=dict)
    per_endpoint: Mapping[str, int] = field(default_factory=dict)
    budget_usd: float | None = None
    budget_tokens: int | None = None
    max_retries: int = 1
    #: The ``sequential`` option: the pairs of runs its test walks (None: no early stop).
    sequential: SequentialDesign | None = None


@dataclass(frozen=True, slots=True)
class RunSlot:
    """What the caps and the budget need to know of one planned run."""

    cell: str
    repetition: int
    provider: str
    endpoint: str | None
    max_cost_usd: float | None
    max_tokens: int | None


@dataclass(frozen=True, slots=True)
class Launch:
    run_id: str
    planned_run_id: str
    attempt: int


def _emit(state: BatchState, event: BatchEvent, out: list[BatchEvent]) -> None:
    state.apply(event)
    out.append(event)


def _base(state: BatchState, now: datetime) -> dict[str, Any]:
    return {"batch_id": state.batch_id, "seq": state.seq + 1, "time": now}


def launches(
    state: BatchState, policy: BatchPolicy, slots: Mapping[str, RunSlot], now: datetime
) -> tuple[list[BatchEvent], list[Launch]]:
    """Launch what the caps and the budget allow now; finish the batch when nothing is left.

    Once the sequential comparison is conclusive nothing more is launched (retries
    included); the runs in flight end normally, then the batch finishes.
    """
    out: list[BatchEvent] = []
    chosen: list[Launch] = []
    if not state.active:
        return out, chosen
    evidence = comparison(state, policy)
    if evidence is not None and evidence.conclusive:
        out.extend(finish_if_done(state, policy, slots, now))
        return out, chosen
    running = [slots[planned] for planned in state.in_flight.values()]
    by_provider = Counter(slot.provider for slot in running)
    by_endpoint = Counter(slot.endpoint for slot in running if slot.endpoint)
    for planned_id, attempt in state.waiting():
        if len(state.in_flight) >= policy.max_in_flight:
            break
        slot = slots[planned_id]
        if by_provider[slot.provider] >= policy.per_provider.get(slot.provider, 1 << 30):
            continue
        if slot.endpoint and by_endpoint[slot.endpoint] >= policy.per_endpoint.get(
            slot.endpoint, 1 << 30
        ):
            continue
        if budget_refusal(state, policy, slots, slot) is not None:
            break  # the budget is global: nothing else may start either
        run_id = attempt_run_id(planned_id, attempt)
        _emit(
            state,
            RunLaunched(
                **_base(state, now),
                payload=RunLaunchedPayload(
                    run_id=run_id, planned_run_id=planned_id, attempt=attempt
                ),
            ),
            out,
        )
        chosen.append(Launch(run_id, planned_id, attempt))
        by_provider[slot.provider] += 1
        if slot.endpoint:
            by_endpoint[slot.endpoint] += 1
    out.extend(finish_if_done(state, policy, slots, now))
    return out, chosen


def budget_refusal(
    state: BatchState, policy: BatchPolicy, slots: Mapping[str, RunSlot], slot: RunSlot
) -> str | None:
    """Why the run of ``slot`` may not start now for the budget's sake, or None.

    A run's worst case is its own cost (token) limit, else the most any ended run of the
    batch spent; while neither is known only one run is in flight at a time. So the batch
    spends at most its budget plus what one run can spend.
    """
    observed_usd = max((end.cost_usd for end in state.ended.values()), default=None)
    observed_tokens = max((end.tokens for end in state.ended.values()), default=None)
    checks = (
        (policy.budget_usd, state.spent_usd, "max_cost_usd", observed_usd, "$", "USD"),
        (policy.budget_tokens, state.spent_tokens, "max_tokens", observed_tokens, "", "tokens"),
    )
    for budget, spent, limit, observed, sign, unit in checks:
        if budget is None:
            continue
        if spent >= budget:
            return f"the budget of {sign}{budget:g} {unit} is spent ({sign}{spent:g})"

        def worst(one: RunSlot, limit: str = limit, observed: Any = observed) -> float | None:
            own = getattr(one, limit)
            return float(own) if own is not None else observed

        next_worst = worst(slot)
        if next_worst is None:
            if state.in_flight:
                return "the cost of a run is not known yet: one run at a time until one ends"
            continue
        reserved = sum(worst(slots[p]) or 0.0 for p in state.in_flight.values())
        if spent + reserved + next_worst > budget:
            left = budget - spent - reserved
            return (
                f"the next run could spend up to {sign}{next_worst:g} {unit} and "
                f"{sign}{max(left, 0):g} of the {sign}{budget:g} budget is left"
            )
    return None


def run_ended(
    state: BatchState,
    policy: BatchPolicy,
    notice: BatchRunEnded,
    now: datetime,
) -> list[BatchEvent]:
    """Account one ended (or refused) run; a failed attempt is retried up to the limit."""
    out: list[BatchEvent] = []
    planned_id = state.in_flight.get(notice.run_id)
    if planned_id is None or not state.active:
        return out  # read twice, not ours, or the batch is over
    if any(problem.reason.startswith(DUPLICATE_RUN_ID) for problem in notice.problems):
        return out  # the run exists (a start repeated after a crash): its end will come
    finished = notice.finished
    failed = finished is None or finished.stop_reason == StopReason.FAILED
    attempt = state.attempts.get(planned_id, 1)
    _emit(
        state,
        RunEnded(
            **_base(state, now),
            payload=RunEndedPayload(
                run_id=notice.run_id,
                planned_run_id=planned_id,
                attempt=attempt,
                success=finished is not None and finished.success,
                failed=failed,
                stop_reason="rejected" if finished is None else finished.stop_reason.value,
                cost_usd=0.0 if finished is None else finished.cost_usd,
                tokens=0 if finished is None else finished.input_tokens + finished.output_tokens,
                retry=failed and attempt <= policy.max_retries,
            ),
        ),
        out,
    )
    _emit(state, BatchProgress(**_base(state, now), payload=state.counts()), out)
    return out


def cancel(
    state: BatchState, command: BatchCancel, now: datetime
) -> tuple[list[BatchEvent], list[str]]:
    """Finish the batch as cancelled; returns the run ids in flight, to be cancelled too."""
    if not state.active:
        return [], []
    in_flight = list(state.in_flight)
    detail = command.reason or "cancelled"
    if command.requested_by:
        detail += f" (by {command.requested_by})"
    out: list[BatchEvent] = []
    _finish(state, BatchStopReason.CANCELLED, detail, now, out)
    return out, in_flight


def finish_if_done(
    state: BatchState, policy: BatchPolicy, slots: Mapping[str, RunSlot], now: datetime
) -> list[BatchEvent]:
    """``batch.finished`` once nothing is in flight and nothing more can be launched (or
    needs to be: the sequential comparison is conclusive)."""
    out: list[BatchEvent] = []
    if not state.active or state.in_flight:
        return out
    evidence = comparison(state, policy)
    counts = state.counts()
    if evidence is not None and evidence.conclusive:
        detail = f"{evidence.sentence()}; {counts.finished} of {counts.planned} planned runs done"
        _finish(state, BatchStopReason.CONCLUSIVE, detail, now, out, evidence)
        return out
    verdict_note = "" if evidence is None else f"; {evidence.sentence()}"
    waiting = state.waiting()
    if not waiting:
        if counts.failed == counts.planned and counts.planned:
            detail = f"every run failed{verdict_note}"
            _finish(state, BatchStopReason.FAILED, detail, now, out, evidence)
        else:
            detail = f"{counts.finished} runs done, {counts.succeeded} found the goal"
            _finish(state, BatchStopReason.COMPLETED, detail + verdict_note, now, out, evidence)
        return out
    refusal = budget_refusal(state, policy, slots, slots[waiting[0][0]])
    if refusal is not None:
        detail = f"stopped launching with {len(waiting)} runs left: {refusal}{verdict_note}"
        _finish(state, BatchStopReason.BUDGET, detail, now, out, evidence)
    return out


def comparison(state: BatchState, policy: BatchPolicy) -> Evidence | None:
    """The sequential comparison over the runs done so far (None: the batch has none).

    Computed from ``state.done`` alone, so a state rebuilt from the log decides the same.
    """
    if policy.sequential is None:
        return None
    return verdict(policy.sequential, state.done)


def _finish(
    state: BatchState,
    reason: BatchStopReason,
    detail: str,
    now: datetime,
    out: list[BatchEvent],
    evidence: Evidence | None = None,
) -> None:
    payload = BatchFinishedPayload(
        stop_reason=reason,
        detail=detail,
        counts=state.counts(),
        evidence=None if evidence is None else _wire(evidence),
    )
    _emit(state, BatchFinished(**_base(state, now), payload=payload), out)


def _wire(evidence: Evidence) -> ComparisonEvidence:
    return ComparisonEvidence(
        arm_a=evidence.arm_a,
        arm_b=evidence.arm_b,
        wins_a=evidence.wins_a,
        wins_b=evidence.wins_b,
        concordant=evidence.concordant,
        left_out=evidence.left_out,
        e_value=evidence.e_value,
        alpha=evidence.alpha,
        conclusive=evidence.conclusive,
        better=evidence.better,
        summary=evidence.sentence(),
    )
