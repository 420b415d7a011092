"""Issue 17, start events: rejections a new user can act on, through the real maze processor.

Undecodable starts keep the Kafka key (and the run id when one can be read), binary input is
explained as "not valid UTF-8 JSON" with its byte offset, every problem of an event is named
in one rejection, and a run id that exists is refused with a reason.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from oriole.admission import Rejected, admit
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import load_settings
from oriole.errors import ValidationError
from oriole.events import DUPLICATE_RUN_ID
from oriole.maze import Maze
from tests.kafka_support import (
    TopicReader,
    finished,
    make_stack,
    publish,
    running_worker,
    start_event,
)
from tests.projection_support import small_maze

#: A UTF-16 byte order mark and text: what json.loads would have guessed as UTF-16.
BINARY = b"\xff\xfe{\x00}\x00"
BINARY_KEY = b"\x00\xffkey"


def _no_maze(name: str) -> Maze:
    raise ValidationError("maze_name", f"no maze named {name!r}")


def _by_key(records: list[Any]) -> dict[bytes | None, dict[str, Any]]:
    return {record.key: json.loads(record.value) for record in records}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_undecodable_and_invalid_starts_keep_their_key_and_run_id(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    sent: list[tuple[bytes, bytes]] = [
        (b"run-binary", BINARY),  # the key is a run id: the rejection names it
        (BINARY_KEY, BINARY),  # a key that is not text: kept as it was sent
        (b"not a run id", b"{broken"),  # text, but no run id: kept as the key only
        # A JSON object that fails the schema: its own run id, whatever the key.
        (b"client-key", json.dumps({"type": "experiment.start", "run_id": "run-json"}).encode()),
    ]
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.experiments_rejected) as rejected,
        TopicReader(kafka_broker, stack.topics.deadletter) as dead,
    ):
        for key, value in sent:
            await publish(kafka_broker, stack.topics.experiments_start, value, key=key)
        await rejected.until(lambda records: len(records) >= len(sent))
        await dead.until(lambda records: len(records) >= 3)
    rejections = _by_key(rejected.records)
    assert set(rejections) == {b"run-binary", BINARY_KEY, b"not a run id", b"run-json"}
    assert rejections[b"run-binary"]["run_id"] == "run-binary"
    assert rejections[BINARY_KEY]["run_id"] is None
    assert rejections[b"not a run id"]["run_id"] is None
    assert rejections[b"run-json"]["run_id"] == "run-json"
    binary_reason = rejections[b"run-binary"]["problems"][0]["reason"]
    assert binary_reason == "not valid UTF-8 JSON: byte 0 cannot be decoded"
    assert "utf-16" not in json.dumps(list(rejections.values())).lower()
    assert rejections[b"not a run id"]["problems"][0]["reason"].startswith("not valid JSON")
    # The dead letters (undecodable ones only) keep the key, in the letter and as its key.
    letters = _by_key(dead.records)
    assert set(letters) == {b"run-binary", BINARY_KEY, b"not a run id"}
    for key, letter in letters.items():
        assert key is not None
        assert base64.b64decode(letter["key"]) == key
        assert letter["source_topic"] == stack.topics.experiments_start
    assert letters[BINARY_KEY]["error"] == binary_reason


def test_schema_and_admission_problems_are_reported_together() -> None:
    """A missing agent no longer hides an unknown maze (nor the later checks' problems)."""
    verdict = admit(
        {"type": "experiment.start", "run_id": "run-many", "maze_name": "nowhere"}, _no_maze
    )
    assert isinstance(verdict, Rejected)
    assert verdict.run_id == "run-many"
    assert dict(verdict.problems) == {
        "agent": "missing (required)",
        "maze_name": "no maze named 'nowhere'",
    }


def test_every_independent_check_runs_beside_a_schema_error() -> None:
    maze = small_maze()
    start: dict[str, Any] = {
        "type": "experiment.start",
        "run_id": "run-all",
        "maze": maze.to_dict(),
        "start": {"x": 0, "y": 0},  # a wall: found although `comment` is of the wrong type
        "comment": 5,
        "agent": {"provider": "openai", "model": "no-price", "seed": 3},
        "prompt": {"version": "no-such-version"},
        "limits": {"max_cost_usd": 1},
    }
    verdict = admit(start, _no_maze)
    assert isinstance(verdict, Rejected)
    fields = [field for field, _ in verdict.problems]
    assert fields[0] == "comment"  # the schema's problems first, then admission's
    assert set(fields) == {
        "comment",
        "start",
        "agent.seed",
        "prompt.version",
        "limits.max_cost_usd",
    }
    # A part that is itself invalid is not checked further: one problem, not two.
    broken = dict(start, agent={"provider": "openai"}, start={"x": "0", "y": 0})
    verdict = admit(broken, _no_maze)
    assert isinstance(verdict, Rejected)
    assert {field for field, _ in verdict.problems} == {
        "comment",
        "agent.model",
        "start.x",
        "prompt.version",
    }


def test_a_valid_start_is_still_admitted() -> None:
    data = json.loads(start_event("run-ok", small_maze().to_dict()))
    verdict = admit(data, _no_maze)
    assert not isinstance(verdict, Rejected), verdict


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_second_start_of_a_running_run_is_refused_with_a_reason(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Not dropped silently: the second start gets a rejection keyed by its run id."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    maze = small_maze().to_dict()
    first = start_event("run-twice", maze, limits={"max_footsteps": 40})
    second = start_event("run-twice", maze, comment="again")
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
        TopicReader(kafka_broker, stack.topics.experiments_rejected) as rejected,
    ):
        await publish(kafka_broker, stack.topics.experiments_start, first)
        await log.until(lambda records: len(records) >= 1)
        await publish(kafka_broker, stack.topics.experiments_start, second)
        await rejected.until(lambda records: len(records) >= 1)
        await log.until(finished(["run-twice"]))
    record = rejected.records[0]
    assert record.key == b"run-twice"
    rejection = json.loads(record.value)
    assert rejection["run_id"] == "run-twice"
    (problem,) = rejection["problems"]
    assert problem["field"] == "run_id"
    assert problem["reason"].startswith(f"{DUPLICATE_RUN_ID}: run run-twice already exists")
    assert json.loads(rejection["original"])["comment"] == "again"
    started = [r for r in log.records if json.loads(r.value)["type"] == "run.started"]
    assert len(started) == 1


def test_the_real_catalogue_reports_an_unknown_maze_beside_a_missing_agent(tmp_path: Path) -> None:
    """The catalogue the worker uses: an unknown name is reported beside the schema's problems."""
    settings = load_settings(env_file=None, home=tmp_path / "home")
    catalogue = MazeCatalogue.from_settings(settings)
    verdict = admit({"type": "experiment.start", "maze_name": "nowhere"}, catalogue.get)
    assert isinstance(verdict, Rejected)
    fields = [field for field, _ in verdict.problems]
    assert fields == ["agent", "maze_name"]
