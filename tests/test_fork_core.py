"""Forking a run in the pure core: the inherited state, reproduction, refusals, verification."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from oriole import generators
from oriole.admission import Admitted, Rejected, admit
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.batch_expand import BatchPlan, BatchRejected, expand_batch
from oriole.batch_models import parse_batch
from oriole.comparison.records import RunFacts, run_factors, run_record
from oriole.errors import MazeError
from oriole.events import ActionCompleted, ActionRequested, RunEvent, RunFinished, RunStarted
from oriole.experiment import AgentSpec, ExperimentStart, ForkPoint, MazeData, RunLimits
from oriole.fork import ForkRefused, fork_basis
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.replay import fork_parent, verify_run
from oriole.rerun import fork_document, rerun_document
from oriole.run_state import fold
from oriole.schema_base import Point

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MAZE = generators.generate("backtracker", 25, 25, seed=11)


def _no_maze(name: str) -> Maze:
    raise MazeError("maze_name", f"no maze named {name!r}")


def _play(request: ExperimentStart, maze: Maze, inherited: Any = None) -> list[RunEvent]:
    """The run's log when its built-in agent plays it to the end, as the runner drives it."""
    run = LocalRun(request, maze, clock=ManualClock(T0), new_id=counting_ids(), inherited=inherited)
    agent = create_builtin(request.agent)

    async def loop() -> None:
        while not run.state.is_finished:
            decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
            run.send(decision.to_intent(request.run_id, run.state.seq, run.state.turn))

    asyncio.run(loop())
    return run.events


def _parent(model: str = "random", seed: int = 5, footsteps: int = 60) -> list[RunEvent]:
    request = ExperimentStart(
        run_id="run-parent",
        requested_at=T0,
        maze=MazeData.from_maze(MAZE),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        limits=RunLimits(max_footsteps=footsteps, max_actions=400, goal_rule="reached"),
    )
    return _play(request, MAZE)


def _fork_start(run_id: str, parent: str, step: int, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "run_id": run_id,
        "requested_at": T0.isoformat(),
        "fork_of": {"run_id": parent, "after_step": step},
        "agent": {"provider": "builtin", "model": "random", "seed": 5},
        "limits": {"max_footsteps": 60, "max_actions": 400, "goal_rule": "reached"},
    }
    document.update(fields)
    return document


def _admit(document: dict[str, Any], logs: Mapping[str, Sequence[RunEvent]]) -> Admitted | Rejected:
    return admit(document, _no_maze, find_parent=lambda run_id: logs.get(run_id, []))


def _outcomes(events: Sequence[RunEvent]) -> list[dict[str, Any]]:
    return [
        e.payload.model_dump(mode="json", by_alias=True)
        for e in events
        if isinstance(e, ActionCompleted)
    ]


def _decisions(events: Sequence[RunEvent]) -> list[tuple[str, str | None]]:
    return [
        (e.payload.action.value, e.payload.reasoning)
        for e in events
        if isinstance(e, ActionRequested)
    ]


def _child(document: dict[str, Any], logs: Mapping[str, Sequence[RunEvent]]) -> list[RunEvent]:
    admitted = _admit(document, logs)
    assert isinstance(admitted, Admitted), admitted
    return _play(admitted.request, admitted.maze, admitted.inherited)


@pytest.mark.parametrize(("model", "seed"), [("random", 5), ("frontier", 9)])
def test_a_fork_with_the_parents_agent_and_seed_repeats_its_steps(model: str, seed: int) -> None:
    parent = _parent(model, seed)
    total = fold("run-parent", parent).tally.actions
    assert total > 30
    for step in (0, 1, 17, total - 1):
        document = _fork_start(
            f"run-child-{step}",
            "run-parent",
            step,
            agent={"provider": "builtin", "model": model, "seed": seed},
        )
        child = _child(document, {"run-parent": parent})
        # The child's own steps are the parent's steps after the fork point, leaf for leaf,
        # and the agent gave the same reasons (a seeded draw names its event).
        assert _outcomes(child) == _outcomes(parent)[step:]
        assert _decisions(child) == _decisions(parent)[step:]
        parent_end, child_end = parent[-1].payload, child[-1].payload
        assert child_end.model_dump(exclude={"duration_seconds"}) == parent_end.model_dump(
            exclude={"duration_seconds"}
        )


def test_a_fork_with_another_agent_starts_in_the_parents_state() -> None:
    parent = _parent("random", 5)
    step = 23
    document = _fork_start(
        "run-other", "run-parent", step, agent={"provider": "builtin", "model": "frontier"}
    )
    admitted = _admit(document, {"run-parent": parent})
    assert isinstance(admitted, Admitted)
    run = LocalRun(
        admitted.request, admitted.maze, clock=ManualClock(T0), inherited=admitted.inherited
    )
    at_fork = fold("run-parent", parent[: _seq_of_step(parent, step)])
    state = run.state
    assert state.seq == 1 and state.run_id == "run-other"
    assert state.position == at_fork.position
    assert state.seen == at_fork.seen
    assert state.visits == at_fork.visits
    assert state.actions == at_fork.actions  # recall and the prompt's history see them
    assert state.tally == at_fork.tally
    assert state.turn == at_fork.turn
    started = run.events[0]
    assert isinstance(started, RunStarted)
    assert started.payload.spec.fork_of == ForkPoint(run_id="run-parent", after_step=step)
    assert started.payload.spec.maze.content_hash == MAZE.content_hash
    # It goes on from there with its own agent, step numbers continuing the parent's.
    child = _play(admitted.request, admitted.maze, admitted.inherited)
    first = next(e for e in child if isinstance(e, ActionCompleted)).payload
    assert first.step == step + 1
    assert first.from_.position() == at_fork.position


def _seq_of_step(events: Sequence[RunEvent], step: int) -> int:
    if step == 0:
        return 1
    return next(e.seq for e in events if isinstance(e, ActionCompleted) and e.payload.step == step)


def test_a_fork_of_a_fork_inherits_the_whole_lineage() -> None:
    parent = _parent("random", 5)
    child = _child(_fork_start("run-child", "run-parent", 10), {"run-parent": parent})
    logs = {"run-parent": parent, "run-child": child}
    grandchild = _child(_fork_start("run-grandchild", "run-child", 20), logs)
    assert _outcomes(grandchild) == _outcomes(parent)[20:]
    # A step the child only inherited is forked from the run that lived it.
    refused = _admit(_fork_start("run-x", "run-child", 4), logs)
    assert isinstance(refused, Rejected)
    assert refused.problems == (
        (
            "fork_of.after_step",
            "run run-child inherited steps 1-10 from run run-parent: "
            "fork run run-parent at step 4 instead",
        ),
    )
    assert verify_run(grandchild, child).ok


def test_refusals_name_the_field_and_the_reason() -> None:
    parent = _parent("random", 5)
    total = fold("run-parent", parent).tally.actions
    running = parent[:-1]
    logs = {"run-parent": parent, "run-running": running}

    def problems(document: dict[str, Any]) -> dict[str, str]:
        result = _admit(document, logs)
        assert isinstance(result, Rejected), result
        return dict(result.problems)

    assert problems(_fork_start("a", "run-nowhere", 3)) == {
        "fork_of.run_id": "run run-nowhere is not in the archive"
    }
    running_reason = problems(_fork_start("a", "run-running", 3))["fork_of.run_id"]
    assert "has not finished" in running_reason
    assert problems(_fork_start("a", "run-parent", total + 1)) == {
        "fork_of.after_step": f"run run-parent has {total} steps: after_step must be between 0 "
        f"and {total}"
    }
    # The parent's maze and start are the fork's: naming others is refused, all at once.
    other = generators.generate("backtracker", 9, 9, seed=1)
    found = problems(
        _fork_start(
            "a",
            "run-parent",
            3,
            maze=MazeData.from_maze(other).model_dump(mode="json"),
            start={"x": 3, "y": 3},
            rules={"vision_range": 5},
        )
    )
    assert set(found) == {"maze", "start", "rules"}
    # A limit the inherited steps already reached: the fork would stop before acting.
    limit = problems(_fork_start("a", "run-parent", 40, limits={"max_actions": 30}))
    assert "max_actions" in limit["fork_of.after_step"]
    # maze_name with fork_of is refused; a start that fails the schema elsewhere still has
    # its fork looked up and its problems named with the others.
    named = problems(_fork_start("a", "run-parent", 3, maze_name="x"))
    assert any("leave `maze_name` out" in reason for reason in named.values())
    schema = problems(_fork_start("a", "run-nowhere", 3, agent={"provider": "builtin"}))
    assert schema == {
        "agent.model": "missing (required)",
        "fork_of.run_id": "run run-nowhere is not in the archive",
    }
    # A worker that cannot read the archive says so.
    default = admit(_fork_start("a", "run-parent", 3), _no_maze)
    assert isinstance(default, Rejected)
    assert "cannot read the archive" in dict(default.problems)["fork_of"]


def test_a_fork_at_a_step_where_the_goal_was_found_is_refused() -> None:
    parent = _parent("frontier", 0, footsteps=400)
    end = parent[-1]
    assert isinstance(end, RunFinished) and end.payload.success
    total = fold("run-parent", parent).tally.actions
    document = _fork_start(
        "a", "run-parent", total, agent={"provider": "builtin", "model": "frontier"}
    )
    document["limits"] = {"max_footsteps": 400, "max_actions": 800, "goal_rule": "reached"}
    result = _admit(document, {"run-parent": parent})
    assert isinstance(result, Rejected)
    assert "goal" in dict(result.problems)["fork_of.after_step"]


def test_replay_verify_checks_the_inheritance_against_the_parents_archive() -> None:
    parent = _parent("random", 5)
    child = _child(_fork_start("run-child", "run-parent", 12), {"run-parent": parent})
    assert fork_parent(child) == ForkPoint(run_id="run-parent", after_step=12)
    assert fork_parent(parent) is None
    assert verify_run(child, parent).ok
    # Without the parent's archive the inherited part is not verified, and says so.
    unread = verify_run(child)
    assert not unread.ok
    assert "was not read" in str(unread.differences[0].derived)
    # An altered parent archive (a tile it saw at step 5) is found.
    altered = [_with_tile_changed(e) if _is_step(e, 5) else e for e in parent]
    report = verify_run(child, altered)
    assert not report.ok
    fields = {d.path for d in report.differences}
    assert "payload.inherited.state_hash" in fields
    assert any(f.startswith("payload.inherited.outcomes[4]") for f in fields)
    # So is a tampered inheritance in the child's own log (its hash no longer matches).
    tampered = [_with_tile_changed_inherited(child[0]), *child[1:]]
    report = verify_run(tampered, parent)
    assert not report.ok
    assert "payload.inherited.state_hash" in {d.path for d in report.differences}


def test_fork_basis_of_a_corrupt_archive_is_a_refusal_not_a_crash() -> None:
    parent = _parent("random", 5)
    shuffled = [parent[0], parent[2], parent[1], *parent[3:]]
    with pytest.raises(ForkRefused, match="corrupt"):
        fork_basis(shuffled, ForkPoint(run_id="run-parent", after_step=3))


def _is_step(event: RunEvent, step: int) -> bool:
    return isinstance(event, ActionCompleted) and event.payload.step == step


def _flip(tiles: list[Any]) -> list[Any]:
    x, y, code = tiles[0]
    return [(x, y, 1 - code if code in (0, 1) else 0), *tiles[1:]]


def _with_tile_changed(event: RunEvent) -> RunEvent:
    assert isinstance(event, ActionCompleted)
    payload = event.payload.model_copy(update={"tiles_seen": _flip(event.payload.tiles_seen)})
    return event.model_copy(update={"payload": payload})


def _with_tile_changed_inherited(event: RunEvent) -> RunEvent:
    assert isinstance(event, RunStarted) and event.payload.inherited is not None
    inherited = event.payload.inherited
    outcomes = list(inherited.outcomes)
    outcomes[2] = outcomes[2].model_copy(update={"tiles_seen": _flip(outcomes[2].tiles_seen)})
    changed = inherited.model_copy(update={"outcomes": outcomes})
    payload = event.payload.model_copy(update={"inherited": changed})
    return event.model_copy(update={"payload": payload})


# --- batches of forks -------------------------------------------------------------------


def _batch(**fields: Any) -> dict[str, Any]:
    return {
        "batch_id": "b-fork",
        "name": "from step 17",
        "agents": ["frontier", "random"],
        "starts": {"fork_of": "run-parent", "at": 17},
        "repetitions": 3,
        "limits": {"max_footsteps": 60, "max_actions": 400, "goal_rule": "reached"},
        **fields,
    }


def test_a_batch_of_forks_continues_every_arm_from_the_same_situation() -> None:
    parent = _parent("random", 5)
    plan = expand_batch(
        _batch(), find_maze=_no_maze, prices=None, find_parent=lambda r: {"run-parent": parent}[r]
    )
    assert isinstance(plan, BatchPlan), plan
    assert len(plan.runs) == 6
    at_fork = fold("run-parent", parent[: _seq_of_step(parent, 17)])
    for run in plan.runs:
        request = run.request
        assert request.fork_of == ForkPoint(run_id="run-parent", after_step=17)
        assert request.maze is not None and request.maze.content_hash == MAZE.content_hash
        assert request.start == Point(x=1, y=1)
        assert request.labels["batch_id"] == "b-fork"
    assert {cell["start"] for cell in plan.cells.values()} == {
        "fork of run-parent after step 17 at (1,1)"
    }
    # Every planned run is admitted by a worker as the same fork (its start state).
    first = plan.runs[0].request.model_dump(mode="json", exclude_none=True)
    admitted = _admit(first, {"run-parent": parent})
    assert isinstance(admitted, Admitted)
    assert admitted.inherited is not None
    forked = LocalRun(
        admitted.request, admitted.maze, clock=ManualClock(T0), inherited=admitted.inherited
    )
    assert forked.state.position == at_fork.position and forked.state.seen == at_fork.seen


def test_a_batch_of_forks_names_every_problem() -> None:
    parent = _parent("random", 5)
    total = fold("run-parent", parent).tally.actions
    logs = {"run-parent": parent}
    refused = expand_batch(
        _batch(
            starts=[{"fork_of": "run-nowhere", "at": 1}, {"fork_of": "run-parent", "at": 10**6}]
        ),
        find_maze=_no_maze,
        prices=None,
        find_parent=lambda r: logs.get(r, []),
    )
    assert isinstance(refused, BatchRejected)
    assert dict(refused.problems) == {
        "starts[0].fork_of": "run run-nowhere is not in the archive",
        "starts[1].at": f"run run-parent has {total} steps: after_step must be between 0 and "
        f"{total}",
    }
    assert parse_batch(_batch(mazes=[{"name": "lab"}])) == [
        (
            "starts",
            "a fork start plays its parent's maze from its parent's state: in a batch of forks "
            "every start is a fork and `mazes` is left out",
        )
    ]
    mixed = parse_batch(_batch(starts=[{"fork_of": "run-parent", "at": 3}, "default"]))
    assert [field for field, _ in mixed] == ["starts"]
    assert parse_batch(_batch(rules={"vision_range": 5})) == [
        ("rules", "a fork keeps its parent's rules: leave `rules` out of a batch of forks")
    ]
    # Without forks, mazes stay required, said with the other problems.
    plain = _batch(repetitions=0)
    del plain["starts"]
    assert dict(parse_batch(plain)) == {
        "repetitions": "Input should be greater than or equal to 1",
        "mazes": "missing (required)",
    }


def test_a_fork_or_rerun_of_a_batch_run_is_not_one_of_the_batchs_runs() -> None:
    parent = _parent("random", 5)
    started = parent[0]
    assert isinstance(started, RunStarted)
    spec = started.payload.spec.model_copy(
        update={"labels": {"batch_id": "b1", "cell": "a0-m0", "repetition": "2", "study": "x"}}
    )
    labelled = started.model_copy(
        update={"payload": started.payload.model_copy(update={"spec": spec})}
    )
    fork = fork_document(labelled, 5, {}, run_id="run-f")
    rerun = rerun_document(labelled, {}, run_id="run-r")
    assert fork["labels"] == rerun["labels"] == {"study": "x"}
    assert fork["fork_of"] == {"run_id": "run-parent", "after_step": 5}
    assert "maze" not in fork and "start" not in fork and "rerun_of" not in fork
    admitted = _admit(fork, {"run-parent": parent})
    assert isinstance(admitted, Admitted)


def test_forks_are_matched_on_their_fork_point() -> None:
    def facts(run_id: str, fork_of: str | None) -> RunFacts:
        return RunFacts(
            run_id=run_id, provider="builtin", model="frontier", endpoint=None,
            prompt_version=None, options={}, seed=None,
            labels={"batch_id": "b", "cell": "a0-m0", "repetition": "0"},
            maze_hash="h", maze_name="lab", start_x=1, start_y=1, vision_range=3,
            status="finished", stop_reason="goal_seen", goal_seen=True, goal_reached=False,
            footsteps=3, actions=3, turns=3, input_tokens=0, output_tokens=0, cost_usd=0.0,
            duration_s=1.0, fork_of=fork_of,
        )  # fmt: skip

    early = run_record(facts("r1", "run-p after step 5"), [], None)
    late = run_record(facts("r2", "run-p after step 50"), [], None)
    plain = run_record(facts("r3", None), [], None)
    assert len({early.pair_key, late.pair_key, plain.pair_key}) == 3
    assert run_record(facts("r4", "run-p after step 5"), [], None).pair_key == early.pair_key
    assert run_factors(facts("r5", "run-p after step 5"))["start"] == (
        "fork of run-p after step 5 at (1,1)"
    )
