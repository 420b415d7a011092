"""Limits that contradict each other are never a silent cap.

A run never makes more footsteps than actions. Given both, ``max_footsteps`` above
``max_actions`` is an error; given one, the other's default gives way, so the run's first
event records the limits that apply — whichever path the start event came by (the model and
admission serve Kafka, HTTP and the CLI alike).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pydantic
import pytest

from oriole import generators
from oriole.admission import Admitted, Rejected, admit
from oriole.cli import main
from oriole.cli.common import forget_process_state
from oriole.errors import ValidationError
from oriole.events import RunStarted, parse_run_event, run_event_from_dict
from oriole.experiment import RunLimits
from oriole.local_run import LocalRun
from oriole.maze import Maze
from oriole.schema_base import field_problems

MAZE = generators.generate("open-field", 12, 10, seed=3, name="field")
UNREACHABLE = (
    "3000 can never be reached: max_actions is 2000 (a run never makes more footsteps than "
    "actions); raise max_actions or lower max_footsteps"
)

#: Limits given -> (max_footsteps, max_actions) that apply.
EFFECTIVE = [
    ({}, (500, 2000)),
    ({"max_footsteps": 300}, (300, 2000)),
    ({"max_footsteps": 2000}, (2000, 2000)),
    ({"max_footsteps": 3000}, (3000, 3000)),  # the default max_actions gives way
    ({"max_footsteps": 3000, "max_actions": 5000}, (3000, 5000)),
    ({"max_footsteps": 3000, "max_actions": 3000}, (3000, 3000)),
    ({"max_actions": 200}, (None, 200)),  # the default 500 footsteps could never bind
    ({"max_actions": 500}, (500, 500)),
    ({"max_footsteps": 30, "max_actions": 20}, None),  # an error
    # null switches a rule off, and off contradicts nothing
    ({"max_footsteps": 3000, "max_actions": None}, (3000, None)),
    ({"max_actions": None}, (500, None)),
    ({"max_footsteps": None, "max_actions": 10}, (None, 10)),
    ({"max_footsteps": None}, (None, 2000)),
]


def find_maze(name: str) -> Maze:
    if name == MAZE.name:
        return MAZE
    raise ValidationError("maze_name", f"no maze named {name!r}")


def start(limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": "run-limits",
        "maze_name": "field",
        "agent": {"provider": "builtin", "model": "frontier"},
        "limits": limits,
    }


@pytest.mark.parametrize(("given", "effective"), EFFECTIVE)
def test_the_limits_that_apply(given: dict[str, Any], effective: tuple[Any, Any] | None) -> None:
    if effective is None:
        with pytest.raises(pydantic.ValidationError) as caught:
            RunLimits.model_validate(given)
        field, reason = field_problems(caught.value)[0]
        assert (field, reason.split(":")[0]) == ("max_footsteps", "30 can never be reached")
        return
    for limits in (RunLimits.model_validate(given), RunLimits(**given)):
        assert (limits.max_footsteps, limits.max_actions) == effective
        # What is written reads back as it is: a run's recorded spec always validates.
        assert RunLimits.model_validate_json(limits.model_dump_json(), strict=True) == limits


def test_a_contradiction_given_in_full_is_refused_by_admission() -> None:
    verdict = admit(start({"max_footsteps": 3000, "max_actions": 2000}), find_maze)
    assert isinstance(verdict, Rejected)
    assert verdict.problems == (("limits.max_footsteps", UNREACHABLE),)


@pytest.mark.parametrize(("given", "effective"), [c for c in EFFECTIVE if c[1] is not None])
def test_admission_records_the_limits_that_apply(
    given: dict[str, Any], effective: tuple[Any, Any]
) -> None:
    verdict = admit(start(given), find_maze)
    assert isinstance(verdict, Admitted), verdict
    limits = verdict.request.limits
    assert (limits.max_footsteps, limits.max_actions) == effective
    # The run's first event carries them, and reads back (replay, watch, the archive).
    started = LocalRun(verdict.request, verdict.maze).events[0]
    assert isinstance(started, RunStarted)
    assert started.payload.spec.limits == limits
    again = run_event_from_dict(json.loads(started.model_dump_json(by_alias=True)))
    assert again == started


def test_recorded_limits_are_history() -> None:
    # A run started before the rule recorded its limits as they were; readers of recorded
    # events accept them with the context {"recorded": True}.
    old = {"max_footsteps": 500, "max_actions": 200}
    with pytest.raises(pydantic.ValidationError):
        RunLimits.model_validate(old)
    limits = RunLimits.model_validate(old, context={"recorded": True})
    assert (limits.max_footsteps, limits.max_actions) == (500, 200)
    run = LocalRun(admitted_request(), MAZE)
    data = json.loads(run.events[0].model_dump_json(by_alias=True))
    data["payload"]["spec"]["limits"] |= {"max_footsteps": 3000, "max_actions": 2000}
    started = RunStarted.model_validate(data, context={"recorded": True})
    assert started.payload.spec.limits.max_actions == 2000
    # The readers of the log and the archive read it so: replay, watch, the projector.
    for parsed in (run_event_from_dict(data), parse_run_event(json.dumps(data))):
        assert isinstance(parsed, RunStarted)
        assert parsed.payload.spec.limits.max_footsteps == 3000


def admitted_request() -> Any:
    verdict = admit(start({}), find_maze)
    assert isinstance(verdict, Admitted)
    return verdict.request


# --- oriole run ---------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("ORIOLE_CONFIG_FILE", "ORIOLE_PRICE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # one error per line
    forget_process_state()
    (tmp_path / "home" / "mazes").mkdir(parents=True)
    MAZE.save(tmp_path / "home" / "mazes" / "field.json")
    yield tmp_path / "home"
    forget_process_state()


def run_print_event(*args: str) -> tuple[int, str, str]:
    """``oriole run --maze field --print-event ARGS`` in-process, as the command runs."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    argv = ["oriole", "run", "--maze", "field", "--print-event", *args]
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        mock.patch.object(sys, "argv", argv),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("args", "effective"),
    [
        ((), (500, 2000)),
        (("--max-moves", "3000"), (3000, 3000)),
        (("--max-moves", "3000", "--max-actions", "4000"), (3000, 4000)),
        (("--max-actions", "200"), (None, 200)),
        (("--max-moves", "300"), (300, 2000)),
    ],
)
def test_oriole_run_prints_the_limits_that_apply(
    home: Path, args: tuple[str, ...], effective: tuple[Any, Any]
) -> None:
    code, out, err = run_print_event(*args)
    assert code == 0, err
    limits = json.loads(out)["limits"]
    assert (limits["max_footsteps"], limits["max_actions"]) == effective


def test_oriole_run_refuses_moves_it_could_never_make(home: Path) -> None:
    code, out, err = run_print_event("--max-moves", "3000", "--max-actions", "2000")
    assert (code, out) == (2, "")
    assert f"--max-moves: {UNREACHABLE}" in " ".join(err.split())
