"""A batch with the ``sequential`` option: its design from the plan, the scheduler's pure
decisions (stop launching once conclusive, let the runs in flight end, finish `conclusive`
with the evidence), the same decision from a rebuilt state, and the spec's problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from oriole.batch_events import (
    BatchEvent,
    BatchFinished,
    BatchFinishedPayload,
    BatchRunEnded,
    BatchStarted,
    BatchStartedPayload,
    BatchStopReason,
    PlannedRunRef,
    RunEnded,
    dump_batch_event,
    parse_batch_event,
)
from oriole.batch_plan import BatchPlan, plan_batch
from oriole.batch_rules import comparison, finish_if_done, launches, run_ended
from oriole.batch_state import BatchState, fold_batch
from oriole.comparison.stopping import SequentialDesign, verdict
from oriole.events import RunFinishedPayload, StopReason
from oriole.maze import Maze
from oriole.schema_base import Point

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BATCH = "seq-1"
#: 8 straight wins cross 1/0.05 = 20 (2^8/9 = 28.4; 2^7/8 = 16 does not).
CROSSING = "conclusive after 8 pairs: frontier found the goal where random did not in 8 of 8 "
CROSSING += "discordant pairs (e-value 28.4 >= 20 = 1/alpha, alpha 0.05)"


def no_library(name: str) -> Maze:
    raise KeyError(name)


def spec(**extra: Any) -> dict[str, Any]:
    """frontier vs random on 4 generated mazes, 10 repetitions: 40 pairs, 80 runs."""
    return {
        "name": "frontier vs random",
        "agents": ["frontier", "random"],
        "mazes": [{"generator": "backtracker", "width": 15, "height": 15, "seeds": [1, 2, 3, 4]}],
        "repetitions": 10,
        "caps": {"max_in_flight": 4},
        "sequential": {"alpha": 0.05},
        **extra,
    }


def plan(document: dict[str, Any]) -> BatchPlan:
    planned = plan_batch(document, BATCH, find_maze=no_library, prices=None)
    assert isinstance(planned, BatchPlan), planned
    return planned


def start(planned: BatchPlan) -> tuple[BatchState, list[BatchEvent]]:
    event = BatchStarted(
        batch_id=BATCH,
        seq=1,
        time=NOW,
        payload=BatchStartedPayload(
            name=planned.name,
            spec={},
            runs=[PlannedRunRef(run_id=r, cell=c, repetition=n) for r, c, n in planned.order],
            cells=planned.cells,
        ),
    )
    state = BatchState(BATCH)
    state.apply(event)
    return state, [event]


def finished(run_id: str, reason: StopReason) -> BatchRunEnded:
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
            model_calls=0,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            duration_seconds=1.0,
        ),
    )


Outcome = Callable[[str], StopReason]


def by_agent(planned: BatchPlan, wins: dict[str, StopReason]) -> Outcome:
    cell_of = {run_id: cell for run_id, cell, _ in planned.order}
    return lambda run_id: wins[planned.cells[cell_of[run_id]]["agent"]]


def end_oldest(state: BatchState, planned: BatchPlan, outcome: Outcome) -> list[BatchEvent]:
    """End the run launched first of those in flight, then launch what the rules allow."""
    run_id, planned_id = next(iter(state.in_flight.items()))
    events = run_ended(state, planned.policy, finished(run_id, outcome(planned_id)), NOW)
    more, _ = launches(state, planned.policy, planned.slots, NOW)
    return events + more


def drive(planned: BatchPlan, outcome: Outcome) -> tuple[BatchState, list[BatchEvent]]:
    state, log = start(planned)
    log += launches(state, planned.policy, planned.slots, NOW)[0]
    while state.active:
        log += end_oldest(state, planned, outcome)
    return state, log


FRONTIER_WINS = {"frontier": StopReason.GOAL_SEEN, "random": StopReason.MAX_FOOTSTEPS}


def test_the_design_pairs_each_arms_runs_at_the_same_place_and_repetition() -> None:
    design = plan(spec()).policy.sequential
    assert design is not None
    assert design.arms == ("frontier", "random") and len(design.pairs) == 40
    assert design.pairs[0] == (f"{BATCH}:a0-m0:r0", f"{BATCH}:a1-m0:r0")
    assert design.pairs[-1] == (f"{BATCH}:a0-m3:r9", f"{BATCH}:a1-m3:r9")
    assert plan(spec(sequential=None)).policy.sequential is None


def test_a_batch_stops_launching_once_conclusive_and_finishes_saying_why() -> None:
    planned = plan(spec())
    state, log = drive(planned, by_agent(planned, FRONTIER_WINS))
    assert state.finished is not None
    assert state.finished.stop_reason == BatchStopReason.CONCLUSIVE
    counts = state.finished.counts
    assert state.finished.detail == f"{CROSSING}; {counts.finished} of 80 planned runs done"
    # 16 runs made the 8 pairs; the 3 others in flight at that moment ended normally.
    assert (counts.launched, counts.finished, counts.in_flight) == (19, 19, 0)
    evidence = state.finished.evidence
    assert evidence is not None and evidence.conclusive
    assert (evidence.wins_a, evidence.wins_b, evidence.concordant) == (8, 0, 0)
    assert evidence.better == "frontier" and evidence.summary == CROSSING
    assert evidence.e_value == pytest.approx(2**8 / 9)
    assert isinstance(log[-1], BatchFinished)


def test_runs_in_flight_when_the_answer_is_known_end_normally() -> None:
    planned = plan(spec())
    outcome = by_agent(planned, FRONTIER_WINS)
    state, log = start(planned)
    log += launches(state, planned.policy, planned.slots, NOW)[0]
    while not (evidence := comparison(state, planned.policy)) or not evidence.conclusive:
        log += end_oldest(state, planned, outcome)
    assert state.active and len(state.in_flight) == 3
    assert launches(state, planned.policy, planned.slots, NOW) == ([], [])
    while state.in_flight:
        ended = end_oldest(state, planned, outcome)
        assert any(isinstance(event, RunEnded) for event in ended)
        log += ended
    assert state.finished is not None and isinstance(log[-1], BatchFinished)
    assert state.finished.stop_reason == BatchStopReason.CONCLUSIVE
    # The evidence is the first crossing's: pairs that ended later do not change it.
    assert state.finished.evidence is not None and state.finished.evidence.summary == CROSSING


def test_a_state_rebuilt_from_the_log_decides_the_same() -> None:
    planned = plan(spec())
    state, log = drive(planned, by_agent(planned, FRONTIER_WINS))
    assert isinstance(log[-1], BatchFinished) and state.finished is not None
    seen_conclusive = False
    for cut in range(1, len(log)):
        rebuilt = fold_batch(BATCH, log[:cut])
        evidence = comparison(rebuilt, planned.policy)
        assert evidence is not None
        assert evidence.conclusive or not seen_conclusive  # once known, always known
        seen_conclusive = evidence.conclusive
        if evidence.conclusive:
            assert launches(rebuilt, planned.policy, planned.slots, NOW)[1] == []
    rebuilt = fold_batch(BATCH, log[:-1])
    again = finish_if_done(rebuilt, planned.policy, planned.slots, NOW)
    assert len(again) == 1 and isinstance(again[0], BatchFinished)
    assert again[0].payload == state.finished


def test_without_a_verdict_the_batch_completes_and_says_so() -> None:
    planned = plan(spec(repetitions=2))
    both = {"frontier": StopReason.GOAL_SEEN, "random": StopReason.GOAL_SEEN}
    state, _ = drive(planned, by_agent(planned, both))
    assert state.finished is not None
    assert state.finished.stop_reason == BatchStopReason.COMPLETED
    assert state.finished.detail == (
        "16 runs done, 16 found the goal; not conclusive after 8 pairs: no discordant pair "
        "yet (e-value 1 < 20 = 1/alpha, alpha 0.05)"
    )
    assert state.finished.evidence is not None and not state.finished.evidence.conclusive


@dataclass(frozen=True)
class End:
    success: bool
    failed: bool = False


def test_pairs_count_in_plan_order_and_a_pending_pair_holds_the_later_ones() -> None:
    """Runs that find the goal may end sooner: counting pairs as they end could favour the
    faster arm, so the verdict reads the pairs in plan order, up to the first pending one."""
    pairs = tuple((f"a{i}", f"b{i}") for i in range(12))
    design = SequentialDesign(0.05, ("A", "B"), pairs)
    done = {f"a{i}": End(True) for i in range(1, 12)} | {f"b{i}": End(False) for i in range(12)}
    assert verdict(design, done).pairs == 0
    done["a0"] = End(False)
    evidence = verdict(design, done)
    assert evidence.conclusive and (evidence.wins_a, evidence.concordant) == (8, 1)


def test_a_pair_with_a_failed_run_is_left_out() -> None:
    design = SequentialDesign(0.05, ("A", "B"), (("a0", "b0"), ("a1", "b1")))
    done = {"a0": End(False, failed=True), "b0": End(True), "a1": End(True), "b1": End(False)}
    evidence = verdict(design, done)
    assert (evidence.left_out, evidence.wins_a, evidence.wins_b) == (1, 1, 0)


def test_the_arms_may_be_named_and_other_arms_run_unpaired() -> None:
    three = spec(
        agents=["frontier", "wall-follower", "random"],
        sequential={"arms": ["random", "frontier"], "alpha": 0.01},
    )
    design = plan(three).policy.sequential
    assert design is not None and design.arms == ("random", "frontier") and design.alpha == 0.01
    assert design.pairs[0] == (f"{BATCH}:a2-m0:r0", f"{BATCH}:a0-m0:r0")
    assert len(design.pairs) == 40


def problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    found = plan_batch(document, BATCH, find_maze=no_library, prices=None)
    assert not isinstance(found, BatchPlan)
    return found


def test_spec_problems_are_named_by_field_all_at_once() -> None:
    found = problems(spec(repetitions=0, sequential={"alpha": 0.5, "arms": ["x"]}))
    assert [field for field, _ in found] == ["repetitions", "sequential.alpha", "sequential.arms"]
    found = problems(spec(sequential={"arms": ["frontier", "frontier"]}))
    assert found == [("sequential.arms", "name two different arms")]
    found = problems(spec(sequential={"arms": ["frontier", "nope"], "alpha": 0.1}))
    assert found == [("sequential.arms[1]", "no arm 'nope'; the arms are 'frontier', 'random'")]
    found = problems(spec(agents=["frontier", "wall-follower", "random"]))
    assert found == [
        (
            "sequential.arms",
            "the batch has 3 arms ('frontier', 'wall-follower', 'random'); the test compares "
            "two: name them",
        )
    ]
    twins = spec(
        agents=["frontier", {"agent": "frontier", "seed": 3}, "random"],
        sequential={"arms": ["frontier", "random"]},
    )
    [(field, reason)] = problems(twins)
    assert field == "sequential.arms" and "give its agents different labels" in reason


def test_finished_events_without_evidence_stay_readable() -> None:
    old = (
        b'{"batch_id": "b", "seq": 9, "schema_version": 1, "time": "2026-11-29T12:00:00Z", '
        b'"type": "batch.finished", "event_id": "6f1c1d9e-6c5b-4a55-9f52-3a1a6d0b1b10", '
        b'"payload": {"stop_reason": "completed", "detail": "2 runs done", "counts": '
        b'{"planned": 2, "launched": 2, "finished": 2, "succeeded": 1, "failed": 0, '
        b'"in_flight": 0, "spent_usd": 0, "spent_tokens": 0}}}'
    )
    event = parse_batch_event(old)
    assert isinstance(event, BatchFinished) and event.payload.evidence is None
    planned = plan(spec())
    state, _ = drive(planned, by_agent(planned, FRONTIER_WINS))
    assert state.finished is not None
    again = BatchFinished(batch_id=BATCH, seq=99, time=NOW, payload=state.finished)
    parsed = parse_batch_event(dump_batch_event(again))
    assert isinstance(parsed, BatchFinished)
    assert isinstance(parsed.payload, BatchFinishedPayload) and parsed.payload == state.finished
