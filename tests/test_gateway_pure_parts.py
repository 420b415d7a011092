"""The gateway's pure parts: the seam, run queries, live decoding, experiment filters,
static paths and authorization rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gateway.api import InvalidRequest, experiments_query, view_query
from gateway.exposure import is_loopback
from gateway.frames import QueryError, Seam, decode_live, parse_run_query, ws_route
from gateway.http import authorize, bearer_token, static_path
from tests.gateway_support import static_files


def test_the_seam_sends_each_seq_once_and_spots_gaps() -> None:
    seam = Seam(3)
    assert [seam.verdict(s) for s in (2, 3, 4, 6)] == ["skip", "skip", "send", "gap"]
    seam.advance(4)
    assert seam.contiguous([3, 4, 5, 6, 8]) == 4
    with pytest.raises(ValueError):
        seam.advance(6)


def test_run_queries() -> None:
    assert parse_run_query({}).from_seq == 0
    assert parse_run_query({"from_seq": ["12"], "token": ["t"]}).from_seq == 12
    assert parse_run_query({"replay": ["max"]}).replay == math.inf
    assert parse_run_query({"replay": ["2.5"]}).replay == 2.5
    for bad in ({"from_seq": ["-1"]}, {"from_seq": ["x"]}, {"replay": ["0"]},
                {"replay": ["1001"]}, {"replay": ["nan"]}, {"from_seq": ["1", "2"]}):  # fmt: skip
        with pytest.raises(QueryError):
            parse_run_query(bad)
    assert ws_route("/ws/runs") == ("runs", "")
    assert ws_route("/ws/runs/run-1") == ("run", "run-1")
    assert ws_route("/ws/runs/a/b") is None
    assert ws_route("/api/experiments") is None


def test_live_events_are_decoded_once_with_their_summary() -> None:
    value = (
        b'{"event_id":"e","run_id":"r","seq":5,"schema_version":1,"time":"2026-11-01T12:00:00Z",'
        b'"type":"action.completed","payload":{"step":2,"turn":1,"footsteps":1,'
        b'"to":{"x":3,"y":4}}}'
    )
    event = decode_live(value)
    assert (event.run_id, event.seq, event.finished) == ("r", 5, False)
    assert json.loads(event.frame) == {"kind": "event", "event": json.loads(value)}
    assert event.summary is not None
    summary = json.loads(event.summary)
    assert summary["kind"] == "run"
    assert summary["summary"]["position"] == {"x": 3, "y": 4}
    assert summary["summary"]["actions"] == 2
    requested = decode_live(value.replace(b"action.completed", b"action.requested"))
    assert requested.summary is None


def test_experiment_filters_are_parameters() -> None:
    statement = experiments_query(
        {"comment": ["50%_off'; drop table x"], "label": ["team:a:b"], "model": ["m"]}
    )
    assert "drop table" not in statement.sql
    assert statement.args[0] == "m"
    assert statement.args[1] == "50\\%\\_off'; drop table x%"
    assert json.loads(statement.args[2]) == {"team": "a:b"}
    with pytest.raises(InvalidRequest) as problems:
        experiments_query({"limit": ["5000"], "status": ["x"]})
    assert {p[0] for p in problems.value.problems} == {"limit", "status"}
    assert view_query("pg_shadow", {}) is None


def test_static_paths_stay_inside_the_folder(tmp_path: Path) -> None:
    root = static_files(tmp_path / "static")
    assert static_path(root, "app.js") == (root / "app.js").resolve()
    for bad in ("../x", "%2e%2e/x", "/etc/passwd", "a\\b", ".hidden", "", "x\x00"):
        assert static_path(root, bad) is None


def test_authorization_rules() -> None:
    tokens = {"r": "read", "w": "write"}
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert authorize({}, "write", None) is None
    assert authorize(tokens, "public", None) is None
    assert authorize(tokens, "read", None) == 401
    assert authorize(tokens, "read", "nope") == 401
    assert authorize(tokens, "read", "r") is None
    assert authorize(tokens, "write", "r") == 403
    assert authorize(tokens, "write", "w") is None
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
