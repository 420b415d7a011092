"""Wire schemas: lossless JSON, clear validation errors, exported JSON Schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pydantic
import pytest

from oriole.events import (
    RUN_EVENT_TYPES,
    DeadLetter,
    ExperimentRejected,
    FieldProblem,
    dump_run_event,
    parse_run_event,
)
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, ModelOptions, PromptSpec
from oriole.intents import AgentIntent
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.schema_base import field_problems
from tests.support import maze_from_text

MAZE = maze_from_text(
    """
    #######
    #.....#
    #.###.#
    #....G#
    #######
    """,
    name="loop",
)


def _start_doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "run_id": "run-1",
        "maze": MAZE.to_dict(),
        "start": {"x": 1, "y": 1},
        "agent": {"provider": "builtin", "model": "frontier", "seed": 3},
    }
    doc.update(changes)
    return doc


def _problems(doc: object) -> list[tuple[str, str]]:
    with pytest.raises(pydantic.ValidationError) as info:
        ExperimentStart.model_validate(doc)
    return field_problems(info.value)


def test_experiment_start_round_trip_is_lossless() -> None:
    start = ExperimentStart(
        run_id="run-1",
        maze=MazeData.from_maze(MAZE),
        agent=AgentSpec(
            provider="ollama",
            model="qwen2.5:7b",
            options=ModelOptions(temperature=0.0, num_ctx=32768, repeat_penalty=1.4, top_p=0.9),
        ),
        prompt=PromptSpec(version="v1", text="Find the goal.\nUse the tools."),
        comment="BATCH 3 (run 5 of 22)",
        labels={"batch": "3"},
        requested_at=datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC),
    )
    text = start.model_dump_json()
    again = ExperimentStart.model_validate_json(text)
    assert again == start
    assert again.model_dump_json() == text
    # Zero stays zero (Oriole stored temperature 0.0 as NULL).
    assert json.loads(text)["agent"]["options"]["temperature"] == 0.0


def test_every_run_event_type_round_trips() -> None:
    run = LocalRun(
        ExperimentStart.model_validate(_start_doc()),
        MAZE,
        clock=ManualClock(datetime(2026, 11, 24, tzinfo=UTC)),
        new_id=counting_ids(),
    )
    from oriole.intents import ModelCall

    run.act(
        "move_east",
        reasoning="east <b>",
        model_call=ModelCall(
            call_id="c1",
            provider="ollama",
            model="m",
            input_tokens=10,
            output_tokens=2,
            duration_ms=12.5,
            tokens_per_second=33.3,
            done_reason="stop",
        ),
    )
    run.act("recall_movement_history", depth=3)
    run.cancel("done")
    kinds = {e.type for e in run.events}
    assert kinds == {
        "run.started",
        "model.called",
        "action.requested",
        "action.completed",
        "run.cancel_requested",
        "run.finished",
    }
    assert {t.model_fields["type"].default for t in RUN_EVENT_TYPES} == kinds
    for event in run.events:
        data = dump_run_event(event)
        assert parse_run_event(data) == event
        decoded = json.loads(data)
        assert set(decoded) == {
            "event_id",
            "run_id",
            "seq",
            "schema_version",
            "time",
            "type",
            "payload",
        }
    outcome = json.loads(dump_run_event(run.events[3]))
    assert outcome["payload"]["from"] == {"x": 1, "y": 1}


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"agent": None}, "agent", "Input should be a valid dictionary"),
        ({"limits": {"max_footsteps": 0}}, "limits.max_footsteps", "greater than or equal to 1"),
        ({"limits": {"max_duration_seconds": -5}}, "limits.max_duration_seconds", "greater than 0"),
        ({"limits": {"goal_rule": "touched"}}, "limits.goal_rule", "'seen' or 'reached'"),
        ({"run_id": "bad id!"}, "run_id", "String should match pattern"),
        ({"start": {"x": -1, "y": 0}}, "start.x", "greater than or equal to 0"),
        ({"agent": {"provider": "skynet", "model": "x"}}, "agent.provider", "Input should be"),
        ({"maze_name": "01_sparse_maze"}, "event", "give `maze` or `maze_name`, not both"),
        ({"maze": None}, "event", "give either `maze` (the full grid) or `maze_name`"),
        ({"colour": "red"}, "colour", "unknown field"),
        (
            {"maze": {**MAZE.to_dict(), "grid_data": [[0, 1], [2]]}},
            "maze.grid_data",
            "expected 5 rows (the height), got 2",
        ),
        (
            {"maze": {**MAZE.to_dict(), "content_hash": "sha256:00"}},
            "maze.content_hash",
            "does not match the grid",
        ),
    ],
)
def test_start_validation_names_field_and_reason(
    changes: dict[str, object], field: str, reason: str
) -> None:
    problems = _problems(_start_doc(**changes))
    assert any(f == field and reason in r for f, r in problems), problems


def test_missing_agent_is_reported_as_missing() -> None:
    doc = _start_doc()
    del doc["agent"]
    assert ("agent", "missing (required)") in _problems(doc)


def test_intent_and_records_round_trip() -> None:
    intent = AgentIntent(
        run_id="run-1", basis_seq=4, turn=2, action="recall_movement_history", depth=5
    )
    assert AgentIntent.model_validate_json(intent.model_dump_json()) == intent
    rejected = ExperimentRejected(
        run_id="run-1", problems=[FieldProblem(field="start", reason="a wall")], original="{}"
    )
    assert ExperimentRejected.model_validate_json(rejected.model_dump_json()) == rejected
    dead = DeadLetter(
        source_topic="oriole.experiments.start",
        partition=0,
        offset=7,
        key=None,
        value="bm90IGpzb24=",
        error_class="JSONDecodeError",
        error="Expecting value",
    )
    assert DeadLetter.model_validate_json(dead.model_dump_json()) == dead
