"""The viewer's run model (gateway/static/run_model.js) against the Python fold.

The browser folds a run's events itself (`RunModel`); the Python core folds the same log
with `RunState`. Both are fed the same runs, built with `LocalRun` and framed exactly as the
gateway sends them, and must agree on everything both hold. Forks (admitted against their
parent's log, their run.started carrying the inherited outcomes) are among the runs. The JS
side runs in Node (no DOM), so `run_model.js` must not touch `document` or `window`.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.frames import decode_live, event_frame
from oriole import generators
from oriole.admission import Admitted
from oriole.errors import RuleError
from oriole.events import ActionRequested, RunEvent, RunStarted, dump_run_event
from oriole.experiment import AgentSpec, ExperimentStart, GameRules, MazeData, RunLimits
from oriole.intents import ActionType, ModelCall
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.run_state import RunState, fold
from oriole.schema_base import Point
from oriole.vision import goal_in_view
from projections.rows import status_of
from tests.fork_support import admitted_fork, played, played_fork
from tests.support import maze_from_text
from tests.viewer_static_support import NODE, NODE_TIMEOUT, RUN_MODEL, needs_node

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

CORRIDOR = maze_from_text(
    """
    #######
    #.....#
    #.###.#
    #...#G#
    #######
    """,
    name="corridor",
)
GOAL_IN_VIEW = maze_from_text(
    """
    #####
    #.G.#
    #####
    """,
    name="goal-in-view",
)

NORTH, SOUTH, EAST, WEST = (
    ActionType.MOVE_NORTH,
    ActionType.MOVE_SOUTH,
    ActionType.MOVE_EAST,
    ActionType.MOVE_WEST,
)


# --- the runs ---------------------------------------------------------------------------------


def new_run(
    run_id: str,
    maze: Maze,
    *,
    start: tuple[int, int] | None = (1, 1),
    limits: RunLimits | None = None,
    rules: GameRules | None = None,
) -> tuple[LocalRun, ManualClock]:
    request = ExperimentStart(
        run_id=run_id,
        maze=MazeData.from_maze(maze),
        start=None if start is None else Point(x=start[0], y=start[1]),
        agent=AgentSpec(provider="ollama", model="qwen2.5:7b"),
        limits=limits or RunLimits(),
        rules=rules or GameRules(),
        comment="viewer model test",
        labels={"batch": "viewer"},
    )
    clock = ManualClock(T0)
    return LocalRun(request, maze, clock=clock, new_id=counting_ids()), clock


def usage(number: int) -> ModelCall:
    return ModelCall(
        call_id=f"call-{number}",
        provider="ollama",
        model="qwen2.5:7b",
        input_tokens=700 + 13 * number,
        output_tokens=40 + number,
        cost_usd=0.0007 * (number + 1),
        duration_ms=1500.0,
    )


def goal_found() -> list[RunEvent]:
    """East along the corridor and down onto the goal, with a recall and odd turns between."""
    run, clock = new_run("run-goal", CORRIDOR, limits=RunLimits(goal_rule="reached"))
    plan: list[dict[str, Any]] = [
        {"action": EAST, "reasoning": "east looks open"},
        {"action": ActionType.RECALL, "depth": 3},
        {"action": EAST},
        {"action": ActionType.NO_TOOL_CALL, "assistant_message": "thinking aloud"},
        {"action": ActionType.INVALID_TOOL_CALL, "tool_name": "teleport", "problem": "no"},
        {"action": EAST},
        {"action": EAST},
        {"action": SOUTH},
        {"action": SOUTH},
    ]
    for number, fields in enumerate(plan):
        clock.advance(1.25)
        # One model call per turn, the turn's first intent carries it.
        call = usage(number) if number % 2 == 0 else None
        run.act(turn=number // 2 + 1, model_call=call, **fields)
    assert run.state.finished is not None and run.state.finished.stop_reason == "goal_reached"
    return run.events


def step_limit() -> list[RunEvent]:
    """Bumps into walls, then the footstep limit stops the run."""
    run, clock = new_run("run-limit", CORRIDOR, limits=RunLimits(max_footsteps=3))
    for turn, action in enumerate([NORTH, WEST, EAST, SOUTH, EAST, NORTH, EAST], start=1):
        if not run.state.is_active:
            break
        clock.advance(0.5)
        run.act(action, turn=turn, model_call=usage(turn))
    assert run.state.finished is not None and run.state.finished.stop_reason == "max_footsteps"
    return run.events


def cancelled() -> list[RunEvent]:
    run, clock = new_run("run-cancel", CORRIDOR)
    for turn, action in enumerate([EAST, NORTH, EAST], start=1):
        clock.advance(2)
        run.act(action, turn=turn)
    clock.advance(1)
    run.cancel("enough")
    assert run.state.finished is not None and run.state.finished.stop_reason == "cancelled"
    return run.events


def failed() -> list[RunEvent]:
    """The agent gives up; the failing call's usage is still counted."""
    run, clock = new_run("run-failed", CORRIDOR)
    run.act(EAST, turn=1, model_call=usage(1))
    clock.advance(3)
    run.fail("ProviderError", "model unreachable", model_call=usage(2))
    assert run.state.finished is not None and run.state.finished.stop_reason == "failed"
    return run.events


def goal_at_start() -> list[RunEvent]:
    """The goal is in view before the first action: started and finished, no step."""
    run, _ = new_run("run-at-start", GOAL_IN_VIEW)
    assert run.state.finished is not None and run.state.tally.actions == 0
    return run.events


def random_walk(see_through: bool) -> Callable[[], list[RunEvent]]:
    """A seeded random walk in a generated maze, walls bumped and all."""

    def build() -> list[RunEvent]:
        maze = generators.generate("backtracker", 15, 15, seed=3, name="viewer-walk")
        run, clock = new_run(
            f"run-walk-{'through' if see_through else 'walls'}",
            maze,
            start=None,
            limits=RunLimits(max_actions=60, max_footsteps=None),
            rules=GameRules(vision_range=5 if see_through else 3, see_through_walls=see_through),
        )
        rng = random.Random(17)
        turn = 1
        while run.state.is_active:
            clock.advance(rng.uniform(0, 4))
            turn += rng.random() < 0.5
            if rng.random() < 0.1:
                run.act(ActionType.RECALL, turn=turn, depth=rng.randint(1, 8))
            else:
                action = rng.choice([NORTH, SOUTH, EAST, WEST])
                run.act(action, turn=turn, model_call=usage(turn) if rng.random() < 0.3 else None)
        return run.events

    return build


def live_mid_decision() -> list[RunEvent]:
    """A live run cut right after a decision: its outcome has not been written yet."""
    events = random_walk(see_through=False)()
    last_decision = max(i for i, e in enumerate(events[:-5]) if isinstance(e, ActionRequested))
    return events[: last_decision + 1]


# --- forks: a parent played to its end, and forks of it admitted against its log ---------------

FORK_MAZE = generators.generate("backtracker", 15, 15, seed=3, name="viewer-walk")


def builtin_parent() -> list[RunEvent]:
    request = ExperimentStart(
        run_id="run-fork-parent",
        requested_at=T0,
        maze=MazeData.from_maze(FORK_MAZE),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model="random", seed=5),
        limits=RunLimits(max_footsteps=40, max_actions=200, goal_rule="reached"),
    )
    return asyncio.run(played(request, FORK_MAZE, ids=5))


def played_by_builtin(admitted: Admitted) -> list[RunEvent]:
    return asyncio.run(played_fork(admitted, ids=7))


def fork_by_another_agent() -> list[RunEvent]:
    """A random walk forked after step 10 and finished by the frontier agent."""
    frontier = {"provider": "builtin", "model": "frontier"}
    limits = {"max_footsteps": 120, "max_actions": 300, "goal_rule": "reached"}
    fork = admitted_fork("run-fork-child", builtin_parent(), 10, frontier, limits=limits)
    return played_by_builtin(fork)


def fork_of_a_fork() -> list[RunEvent]:
    """The fork above forked again after a step it lived itself: the lineage's steps."""
    child = fork_by_another_agent()
    agent = {"provider": "builtin", "model": "random", "seed": 2}
    limits = {"max_footsteps": 60, "max_actions": 300, "goal_rule": "reached"}
    return played_by_builtin(admitted_fork("run-fork-grandchild", child, 14, agent, limits=limits))


def fork_at_start() -> list[RunEvent]:
    """A fork after step 0: nothing inherited but the start."""
    agent = {"provider": "builtin", "model": "wall-follower"}
    limits = {"max_footsteps": 25, "max_actions": 100}
    fork = admitted_fork("run-fork-zero", builtin_parent(), 0, agent, limits=limits)
    return played_by_builtin(fork)


def fork_of_a_model_run() -> list[RunEvent]:
    """A model's random walk (model calls, tokens, recalls) forked after step 25 and
    continued by hand, with model calls of its own, until its action limit."""
    parent = random_walk(see_through=False)()
    agent = {"provider": "ollama", "model": "qwen2.5:7b"}
    limits = {"max_actions": 60, "max_footsteps": None}
    fork = admitted_fork("run-fork-model", parent, 25, agent, limits=limits)
    clock = ManualClock(T0)
    run = LocalRun(
        fork.request, fork.maze, clock=clock, new_id=counting_ids(9), inherited=fork.inherited
    )
    rng = random.Random(4)
    turn = run.state.turn
    while run.state.is_active:
        clock.advance(1)
        turn += 1
        action = rng.choice([NORTH, SOUTH, EAST, WEST, ActionType.RECALL])
        fields = {"depth": 3} if action is ActionType.RECALL else {}
        run.act(action, turn=turn, model_call=usage(turn), **fields)
    return run.events


def fork_just_started() -> list[RunEvent]:
    """A live fork with nothing of its own yet: everything it holds is inherited."""
    return fork_of_a_model_run()[:1]


SCENARIOS: dict[str, Callable[[], list[RunEvent]]] = {
    "goal_found": goal_found,
    "step_limit": step_limit,
    "cancelled": cancelled,
    "failed": failed,
    "goal_at_start": goal_at_start,
    "random_walk": random_walk(see_through=False),
    "random_walk_see_through": random_walk(see_through=True),
    "live_mid_decision": live_mid_decision,
    "fork_by_another_agent": fork_by_another_agent,
    "fork_of_a_fork": fork_of_a_fork,
    "fork_at_start": fork_at_start,
    "fork_of_a_model_run": fork_of_a_model_run,
    "fork_just_started": fork_just_started,
}


# --- the two folds ----------------------------------------------------------------------------


def frames(events: list[RunEvent]) -> list[str]:
    """The `event` frames the gateway sends for these events (live and archive agree)."""
    texts = []
    for event in events:
        frame = decode_live(dump_run_event(event)).frame  # as a Kafka record goes out live
        assert frame == event_frame(dump_run_event(event))  # as the archive sends it
        texts.append(frame.decode())
    return texts


#: Feeds the frames to `RunModel` as the viewer's RunFeed does, and prints what it holds.
NODE_RUNNER = """
import { readFileSync } from "node:fs";
const { RunModel, OUTCOMES } = await import(process.argv[2]);
const { runId, frames } = JSON.parse(readFileSync(0, "utf8"));
const xy = (p) => (p ? [p.x, p.y] : null);

const model = new RunModel(runId);
const results = frames.map((text) => {
  const frame = JSON.parse(text);
  return frame.kind === "event" ? model.apply(frame.event) : "not an event";
});
const replayed = frames.map((text) => model.apply(JSON.parse(text).event));
const gap = frames.length > 1 ? new RunModel(runId).apply(JSON.parse(frames[1]).event) : null;

const rows = [];
for (let y = 0; y < model.height; y++) {
  rows.push(Array.from(model.grid.subarray(y * model.width, (y + 1) * model.width)));
}
const seen = new Map();
for (const step of model.steps) {
  for (const [x, y, code] of step.tiles_seen || []) seen.set(`${x},${y}`, [x, y, code]);
}
const last = model.steps[model.steps.length - 1];
const status = model.status();
let finished = null;
if (model.finished) {
  const { time, ...payload } = model.finished;
  finished = payload;
}
const summary = {
  seq: model.lastSeq,
  started: model.spec !== null,
  spec: model.spec,
  width: model.width,
  height: model.height,
  grid: rows,
  goals: model.goals.map(xy),
  start: xy(model.start),
  started_at_ms: model.startTime,
  position: xy(model.positionAt(model.steps.length)),
  actions: model.steps.length,
  footsteps: last ? last.footsteps : 0,
  turn: model.turn,
  visits: [...model.visits.entries()]
    .map(([key, times]) => [...key.split(",").map(Number), times])
    .sort((a, b) => a[1] - b[1] || a[0] - b[0]),
  goal_seen: model.goalSeen,
  goal_reached: model.goalReached,
  fork_of: model.forkOf,
  inherited_steps: model.inheritedSteps,
  inherited_flags: model.steps.map((step) => Boolean(step.inherited)),
  path: model.steps.map((step) => xy(step.to)),
  steps: model.steps.map((step) => ({
    step: step.step,
    turn: step.turn,
    action: step.action,
    success: step.success,
    from: xy(step.from),
    to: xy(step.to),
    tiles: step.tiles_seen,
  })),
  seen: [...seen.values()].sort((a, b) => a[1] - b[1] || a[0] - b[0]),
  pending: model.pending ? model.pending.intent_id : null,
  cancel_requested: model.cancel !== null,
  finished,
  status,
  has_outcome: status in OUTCOMES,
  model_calls: model.modelCalls,
  input_tokens: model.inputTokens,
  output_tokens: model.outputTokens,
  cost_usd: model.costUsd,
  last_result: last ? last.result : null,
};
process.stdout.write(JSON.stringify({ summary, results, replayed, gap }));
"""


def node_fold(tmp_path: Path, run_id: str, events: list[RunEvent]) -> dict[str, Any]:
    assert NODE is not None
    runner = tmp_path / "fold_run.mjs"
    runner.write_text(NODE_RUNNER)
    done = subprocess.run(
        [NODE, str(runner), RUN_MODEL.as_uri()],
        input=json.dumps({"runId": run_id, "frames": frames(events)}),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"node failed ({done.returncode}):\n{done.stderr}"
    output: dict[str, Any] = json.loads(done.stdout)
    return output


def xy(position: Any) -> list[int]:
    return [position.x, position.y]


def python_fold(run_id: str, events: list[RunEvent]) -> dict[str, Any]:
    """What `RunState` holds, in the shape of the JS summary."""
    state = fold(run_id, events)
    spec, maze = state.require_spec()
    tally = state.tally
    # The viewer knows what each step saw; RunState.seen also has the view from the start
    # tile, which is in no event (checked separately below).
    seen: dict[tuple[int, int], int] = {}
    for record in state.actions:
        for x, y, code in record.tiles:
            seen[x, y] = code
    assert state.started_at is not None
    finished = state.finished
    started = events[0]
    assert isinstance(started, RunStarted)
    inherited = started.payload.inherited
    inherited_steps = 0 if inherited is None else len(inherited.outcomes)
    # The goal in view from the start tile is in no event but the end's: the viewer knows
    # the flag from the steps (and the end) only.
    start_view = maze.vision(
        spec.start.x, spec.start.y, spec.rules.vision_range, spec.see_through()
    )
    goal_seen = tally.goal_seen
    if goal_in_view(start_view) and not any(r.goal_seen for r in _outcomes(events, inherited)):
        goal_seen = finished is not None and finished.goal_seen
    summary = {
        "seq": state.seq,
        "started": state.started,
        "spec": spec.model_dump(mode="json", by_alias=True),
        "width": maze.width,
        "height": maze.height,
        "grid": maze.grid_data(),
        "goals": [xy(maze.goal)],
        "start": xy(spec.start),
        "started_at_ms": state.started_at.timestamp() * 1000,
        "position": xy(state.position),
        "actions": tally.actions,
        "footsteps": tally.footsteps,
        "turn": state.turn,
        "visits": sorted(
            ([p.x, p.y, times] for p, times in state.visits.items()), key=lambda v: (v[1], v[0])
        ),
        "goal_seen": goal_seen,
        "goal_reached": tally.goal_reached,
        "fork_of": None if spec.fork_of is None else spec.fork_of.model_dump(mode="json"),
        "inherited_steps": inherited_steps,
        "inherited_flags": [i < inherited_steps for i in range(len(state.actions))],
        "path": [xy(record.to) for record in state.actions],
        "steps": [
            {
                "step": record.step,
                "turn": record.turn,
                "action": record.action.value,
                "success": record.success,
                "from": xy(record.from_),
                "to": xy(record.to),
                "tiles": [list(tile) for tile in record.tiles],
            }
            for record in state.actions
        ],
        "seen": [[x, y, code] for (x, y), code in sorted(seen.items(), key=lambda i: i[0][::-1])],
        "pending": None if state.pending is None else str(state.pending.intent_id),
        "cancel_requested": state.cancel_requested,
        "finished": None if finished is None else finished.model_dump(mode="json", by_alias=True),
        "status": (
            "running" if finished is None else status_of(finished.stop_reason, finished.success)
        ),
        "has_outcome": True,
        "model_calls": tally.model_calls,
        "input_tokens": tally.input_tokens,
        "output_tokens": tally.output_tokens,
        "cost_usd": tally.cost_usd,
        "last_result": state.last_result,
    }
    # JSON both ways, as the JS summary went (1800.0 and 1800 compare equal anyway).
    result: dict[str, Any] = json.loads(json.dumps(summary))
    return result


def _outcomes(events: list[RunEvent], inherited: Any) -> list[Any]:
    """Every outcome the run's log holds: inherited ones first."""
    own = [e.payload for e in events if e.type == "action.completed"]
    return [*([] if inherited is None else inherited.outcomes), *own]


# --- the tests --------------------------------------------------------------------------------


@needs_node
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_js_run_model_folds_like_run_state(scenario: str, tmp_path: Path) -> None:
    events = SCENARIOS[scenario]()
    run_id = events[0].run_id
    js = node_fold(tmp_path, run_id, events)
    expected = python_fold(run_id, events)
    actual = js["summary"]
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key] == value, f"{scenario}: RunModel and RunState differ on {key!r}"

    # Every step seen by the viewer is in the Python fold's seen map, with the same code.
    state = fold(run_id, events)
    assert all(state.seen[x, y] == code for x, y, code in js["summary"]["seen"])

    # What `apply` says about each event, and about events already applied or out of order
    # (RunState skips the first and refuses the second).
    kinds = {"run.started": "start", "action.completed": "step", "run.finished": "finish"}
    assert js["results"] == [kinds.get(event.type, "other") for event in events]
    assert js["replayed"] == ["dup"] * len(events)
    assert not any(state.apply_if_new(event) for event in events)
    if len(events) > 1:
        assert js["gap"] == "gap"
        with pytest.raises(RuleError, match="^seq: "):
            RunState(run_id).apply(events[1])


def test_scenarios_cover_every_event_type_and_outcome() -> None:
    runs = [build() for build in SCENARIOS.values()]
    types = {event.type for events in runs for event in events}
    assert types == {
        "run.started",
        "model.called",
        "action.requested",
        "action.completed",
        "run.cancel_requested",
        "run.finished",
    }
    statuses = set()
    for events in runs:
        state = fold(events[0].run_id, events)
        finished = state.finished
        statuses.add(
            "running" if finished is None else status_of(finished.stop_reason, finished.success)
        )
        if any(not record.success and record.action.is_move for record in state.actions):
            statuses.add("wall bump")
    assert statuses == {"succeeded", "stopped", "cancelled", "failed", "running", "wall bump"}
