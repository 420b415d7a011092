"""`oriole fork` on a real `oriole up` stack: the worker reads the parent from the archive,
the fork repeats or continues it, and replay verifies the fork against the parent's archive."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from oriole import generators
from tests.test_cli_data import oriole, query, start_up
from tests.test_cli_stack import DEADLINE, _wait_for, stop_up

pytestmark = pytest.mark.slow

STEP = 20


def _projected(dsn: str, run_id: str) -> dict[str, object]:
    deadline = time.monotonic() + DEADLINE
    finished = "SELECT * FROM experiments WHERE run_id = $1 AND status <> 'running'"
    while not (rows := query(dsn, finished, run_id)):
        assert time.monotonic() < deadline, f"run {run_id} never reached the projections"
        time.sleep(0.2)
    return rows[0]


def test_fork_continues_an_archived_run_and_replay_verifies_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "mazes").mkdir(parents=True)
    generators.generate("backtracker", 21, 21, seed=5, name="lab").save(home / "mazes" / "lab.json")
    log = tmp_path / "up.log"
    up = start_up(home, log)
    try:
        _wait_for((home / "stack.json").exists, "the stack file", up, log)
        dsn = oriole(home, "db", "url").stdout.strip()
        parent = oriole(
            home, "run", "--maze", "lab", "--agent", "builtin:random", "--seed", "4",
            "--run-id", "run-parent", "--max-moves", "60", "--goal-rule", "reached",
            "--wait", "--json",
        )  # fmt: skip
        assert parent.returncode == 0, parent.stderr
        parent_end = json.loads(parent.stdout)
        assert parent_end["actions"] > STEP
        _projected(dsn, "run-parent")

        # The same agent and seed from step 20: the parent's steps after 20, exactly.
        same = oriole(
            home, "fork", "run-parent", "--at", str(STEP), "--run-id", "run-same",
            "--wait", "--json",
        )  # fmt: skip
        assert same.returncode == 0, same.stderr
        same_end = json.loads(same.stdout)
        for key in ("stop_reason", "footsteps", "actions", "position"):
            assert same_end[key] == parent_end[key], key
        # Another agent continues from the parent's position with its history.
        other = oriole(
            home, "fork", "run-parent", "--at", str(STEP), "--agent", "builtin:frontier",
            "--run-id", "run-other", "--wait", "--json",
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert json.loads(other.stdout)["actions"] > STEP
        _projected(dsn, "run-same")
        _projected(dsn, "run-other")

        # Refusals name the field and the reason, and publish nothing.
        beyond = oriole(home, "fork", "run-parent", "--at", "100000")
        assert beyond.returncode == 2
        assert "fork_of.after_step" in beyond.stderr and "between 0 and" in beyond.stderr
        unknown = oriole(home, "fork", "run-nowhere", "--at", "1")
        assert unknown.returncode == 2
        assert "not in the archive" in unknown.stderr
        rules = oriole(home, "fork", "run-parent", "--at", "3", "--set", "rules.vision_range=7")
        assert rules.returncode == 2
        assert "rules" in rules.stderr and "keeps its parent's rules" in rules.stderr

        # A batch of forks: every arm continues from the parent's step 20.
        spec = tmp_path / "forks.toml"
        spec.write_text(
            'name = "from step 20"\nagents = ["frontier", "random"]\nrepetitions = 2\n'
            'starts = { fork_of = "run-parent", at = 20 }\n'
            '[limits]\nmax_footsteps = 60\nmax_actions = 400\ngoal_rule = "reached"\n'
        )
        batch = oriole(home, "batch", "run", str(spec), "--batch-id", "forks", "--wait", "--json")
        assert batch.returncode == 0, batch.stdout + batch.stderr
        forked = query(
            dsn,
            """SELECT payload #> '{spec,fork_of}' AS fork_of,
                      jsonb_array_length(payload #> '{inherited,outcomes}') AS inherited
               FROM run_events WHERE type = 'run.started' AND run_id LIKE 'forks:%'""",
        )
        assert len(forked) == 4
        for row in forked:
            assert json.loads(str(row["fork_of"])) == {"run_id": "run-parent", "after_step": STEP}
            assert row["inherited"] == STEP
    finally:
        stop_up(up)
    assert up.returncode == 0, log.read_text()[-3000:]

    printed = oriole(home, "replay", "run-other")
    assert printed.returncode == 0, printed.stderr
    events = [json.loads(line) for line in printed.stdout.splitlines()]
    started = events[0]["payload"]
    assert started["spec"]["fork_of"] == {"run_id": "run-parent", "after_step": STEP}
    assert len(started["inherited"]["outcomes"]) == STEP
    first_own = next(e for e in events if e["type"] == "action.completed")
    assert first_own["payload"]["step"] == STEP + 1
    assert first_own["payload"]["from"] == started["inherited"]["outcomes"][-1]["to"]

    verify = oriole(home, "replay", "run-same", "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "identical" in verify.stdout

    # Alter what the parent saw at step 5 in its archive: the fork no longer verifies.
    dsn = oriole(home, "db", "url").stdout.strip()
    altered = query(
        dsn,
        """UPDATE run_events SET payload = jsonb_set(payload, '{tiles_seen,0,2}',
               to_jsonb(9 - (payload #>> '{tiles_seen,0,2}')::int))
           WHERE run_id = 'run-parent' AND type = 'action.completed'
             AND (payload ->> 'step')::int = 5
           RETURNING seq""",
    )
    assert len(altered) == 1
    broken = oriole(home, "replay", "run-same", "--verify", "--json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    paths = {d["path"] for d in json.loads(broken.stdout)["differences"]}
    assert "payload.inherited.state_hash" in paths
    assert any(p.startswith("payload.inherited.outcomes[4].tiles_seen") for p in paths)
