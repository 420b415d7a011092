"""Gateway hardening (issue 11), the pure parts: the guard's rules (gateway/guard.py), token
settings, the audit records (oriole/audit.py) and the live hub's tolerance of bad records."""

from __future__ import annotations

import hashlib
import json

import pytest
from websockets.datastructures import Headers

from gateway.guard import (
    Admission,
    Gatekeeper,
    KeyedRateLimit,
    Policy,
    Refusal,
    head_problem,
    host_allowed,
    origin_allowed,
    principals,
    token_name,
)
from gateway.hub import Hub
from oriole.audit import AuditRecord, outcome_of
from oriole.environment.settings import GatewayToken, load_settings


def test_hosts_default_to_loopback_names_on_any_port() -> None:
    for host in ("localhost", "LOCALHOST:8080", "127.0.0.1:1", "[::1]:8080", "[::1]", None):
        assert host_allowed(host, ())
    for host in ("evil.example", "evil.example:8080", "127.0.0.2", "localhost.evil", "", "a b"):
        assert not host_allowed(host, ())
    for host in ("[::1", "[::1]x", "localhost:0", "localhost:99999", "localhost:x", "h\xe9"):
        assert not host_allowed(host, ())
    assert host_allowed("oriole.example.org:443", ["oriole.example.org"])
    assert not host_allowed("localhost", ["oriole.example.org"])
    assert host_allowed("anything.example", ["*"])


def test_origins_must_be_this_gateway_exactly() -> None:
    assert origin_allowed(None, "127.0.0.1:8080")
    assert origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert origin_allowed("http://LOCALHOST:8080", "localhost:8080")
    assert origin_allowed("http://localhost", "localhost:80")
    assert origin_allowed("http://[::1]:8080", "[::1]:8080")
    for origin in (
        "https://127.0.0.1:8080",
        "ws://127.0.0.1:8080",
        "http://127.0.0.1:8081",
        "http://127.0.0.1",
        "null",
        "",
        "http://user@127.0.0.1:8080",
        "http://127.0.0.1:8080/path",
        "http://127.0.0.1:99999",
        "file://",
    ):
        assert not origin_allowed(origin, "127.0.0.1:8080"), origin
    assert not origin_allowed("http://127.0.0.1:8080", None)


def test_malformed_heads_are_named() -> None:
    fine = Headers([("Host", "127.0.0.1"), ("Authorization", "Bearer x")])
    assert head_problem("GET", "/api/experiments?x=%20", fine) is None
    for method, target in (
        ("GET", "/a\x00"),
        ("GET", "/a%00"),
        ("GET", "/a?b=%0d%0a"),
        ("GET", "/a\x7f"),
        ("GET", "api"),
        ("GET", "/caf\xe9"),
        ("get", "/"),
        ("G ET", "/"),
    ):
        assert head_problem(method, target, fine) is not None, (method, target)
    for name in ("Host", "Authorization"):
        twice = Headers([(name, "a"), (name, "b")])
        assert head_problem("GET", "/", twice) == f"more than one {name} header"
    assert head_problem("GET", "/", Headers([("Host", "h\xe9")])) is not None


def test_tokens_get_stable_names_that_are_not_the_secret() -> None:
    name = token_name("s3cret-token")
    assert name == "token-" + hashlib.sha256(b"s3cret-token").hexdigest()[:8]
    assert name == token_name("s3cret-token") and "s3cret" not in name
    table = principals(
        {
            "a": "read",
            "b": {"scope": "write", "name": "alice"},
            "c": GatewayToken(scope="write"),
            "d": GatewayToken(scope="read", name="bob"),
        }
    )
    assert [(p.name, p.scope) for p in table.values()] == [
        (token_name("a"), "read"),
        ("alice", "write"),
        (token_name("c"), "write"),
        ("bob", "read"),
    ]
    with pytest.raises(ValueError):
        principals({"x": "admin"})


def test_token_settings_accept_both_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ORIOLE_GATEWAY_TOKENS",
        '{"s3cret-1": "read", "s3cret-2": {"scope": "write", "name": "al"}}',
    )
    monkeypatch.setenv("ORIOLE_GATEWAY_ALLOWED_HOSTS", "Oriole.Example.org, [::1]")
    settings = load_settings(env_file=None)
    assert settings.gateway_tokens == {
        "s3cret-1": "read",
        "s3cret-2": GatewayToken(scope="write", name="al"),
    }
    assert settings.gateway_allowed_hosts == ["oriole.example.org", "[::1]"]
    assert settings.gateway_max_body_bytes == 16 * 1024 * 1024
    assert settings.gateway_database_timeout == 3.0
    assert "s3cret" not in repr(settings)


def test_rate_windows_slide_and_stay_bounded() -> None:
    limit = KeyedRateLimit(per_minute=2, max_keys=2)
    assert [limit.admit("a", t) for t in (0.0, 1.0)] == [0.0, 0.0]
    assert limit.admit("a", 2.0) == pytest.approx(58.0)
    assert limit.admit("a", 60.0) == 0.0  # the first request left the window
    assert limit.admit("b", 2.0) == 0.0
    limit.admit("c", 2.0)
    assert set(limit._windows) == {"b", "c"}  # the least recently used key went
    assert KeyedRateLimit(per_minute=0).admit("a", 0.0) == 0.0


def test_the_gatekeeper_decides_from_the_head_alone() -> None:
    keeper = Gatekeeper(
        Policy(
            tokens=principals({"w": "write", "r": "read"}),
            max_body_bytes=100,
            max_concurrent_bodies=1,
            rate_per_token=0,
            rate_per_address=0,
        )
    )

    def check(method: str, target: str, size: int = 0, **headers: str) -> Refusal | Admission:
        return keeper.check(method, target, Headers(list(headers.items())), size, "1.2.3.4", 0.0)

    refused = check("POST", "/api/experiments", 10**9)
    assert isinstance(refused, Refusal) and refused.status == 401
    refused = check("POST", "/api/experiments", 10**9, Authorization="Bearer r")
    assert isinstance(refused, Refusal) and refused.status == 403
    refused = check("POST", "/api/experiments", 101, Authorization="Bearer w")
    assert isinstance(refused, Refusal) and refused.status == 413
    refused = check("GET", "/api/experiments", 1, Authorization="Bearer r")
    assert isinstance(refused, Refusal) and refused.status == 413
    assert check("GET", "/ws/runs?token=r") == Admission(token_name("r"))
    assert isinstance(check("GET", "/api/experiments?token=r"), Refusal)  # HTTP: header only
    assert check("GET", "/healthz") == Admission("anonymous")
    taken = check("POST", "/api/experiments", 100, Authorization="Bearer w")
    assert taken == Admission(token_name("w"), body_slot=True)
    busy = check("POST", "/api/experiments", 5, Authorization="Bearer w")
    assert isinstance(busy, Refusal) and busy.status == 503 and "Retry-After" in busy.headers
    keeper.release()
    assert isinstance(check("POST", "/api/experiments", 5, Authorization="Bearer w"), Admission)


def test_audit_records_name_the_outcome() -> None:
    assert [outcome_of(s) for s in (202, 400, 403, 503)] == [
        "accepted",
        "refused",
        "refused",
        "failed",
    ]
    record = AuditRecord(
        action="experiment.cancel",
        run_id="run-1",
        token_name="alice",
        client="127.0.0.1",
        status=202,
        outcome="accepted",
    )
    document = json.loads(record.model_dump_json())
    assert document["type"] == "gateway.audit"
    assert set(document) == {
        "type",
        "schema_version",
        "time",
        "action",
        "run_id",
        "batch_id",
        "token_name",
        "client",
        "status",
        "outcome",
        "detail",
    }


def test_the_live_hub_skips_hostile_records_and_goes_on() -> None:
    """A record nested 100,000 deep on the events topic raised RecursionError in the hub's
    task, which ended every live feed of the gateway."""
    hub = Hub(bootstrap_servers="127.0.0.1:9", topic="t.runs.events")
    hub.dispatch([b"[" * 100_000, b"1" * 5000, b"\xff\xfe", None, b'{"run_id": 5}'])
    assert hub.events_seen == 0
