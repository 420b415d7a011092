"""The metrics and health listener, the consumer-lag helper, the batch gauges and the setting
that places the listener (issue 15, item 1): in-process, no broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from oriole.environment.settings import SettingsError, load_settings
from oriole.telemetry.lag import CONSUMER_LAG, LagMonitor
from oriole.telemetry.metrics_http import MetricsServer
from streams import metrics


@pytest.fixture
def registry() -> CollectorRegistry:
    own = CollectorRegistry()
    Counter("probe_things_total", "Things counted by the test.", registry=own).inc(3)
    return own


@pytest.mark.asyncio
async def test_metrics_health_and_nothing_else(registry: CollectorRegistry) -> None:
    services = {"maze processor": True, "agent runner": True}
    async with MetricsServer(
        host="127.0.0.1", port=0, process="worker", health=lambda: services, registry=registry
    ) as server:
        assert server.port > 0
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            assert "probe_things_total 3.0" in scraped.text
            health = await client.get("/healthz?verbose=1")
            assert health.status_code == 200
            assert health.json() == {"process": "worker", "status": "ok", "services": services}
            for path in ("/", "/metrics/x", "/api/experiments", "/healthz/"):
                missing = await client.get(path)
                assert missing.status_code == 404, path
                assert missing.json() == {"error": "not found"}
            refused = await client.post("/metrics", content=b"x")
            assert refused.status_code == 405
            head = await client.head("/healthz")
            assert head.status_code == 200 and head.content == b""


@pytest.mark.asyncio
async def test_health_is_503_while_a_service_says_it_is_unhealthy(
    registry: CollectorRegistry,
) -> None:
    services = {"projector": True}
    broken = False

    def health() -> dict[str, bool]:
        if broken:
            raise RuntimeError("the check itself failed")
        return services

    async with (
        MetricsServer(
            host="127.0.0.1", port=0, process="projector", health=health, registry=registry
        ) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        services["projector"] = False
        down = await client.get("/healthz")
        assert down.status_code == 503
        assert down.json() == {
            "process": "projector",
            "status": "unhealthy",
            "services": {"projector": False},
        }
        # Metrics are served whatever the health says: a scrape must see why.
        assert (await client.get("/metrics")).status_code == 200
        services["projector"] = True
        assert (await client.get("/healthz")).status_code == 200
        broken = True
        failed = await client.get("/healthz")
        assert failed.status_code == 503
        assert failed.json()["services"] == {}


@pytest.mark.asyncio
async def test_a_garbage_request_gets_400_and_the_server_goes_on(
    registry: CollectorRegistry,
) -> None:
    import asyncio

    async with MetricsServer(
        host="127.0.0.1", port=0, process="worker", health=lambda: {"w": True}, registry=registry
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400 ")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200


# --- consumer lag ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    """What the lag helper asks of an aiokafka consumer, with settable answers."""

    ends: dict[TP, int]
    positions: dict[TP, int]
    watermarks: dict[TP, int] = field(default_factory=dict)
    end_offsets_fail: bool = False

    def assignment(self) -> set[TP]:
        return set(self.positions)

    async def end_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        if self.end_offsets_fail:
            raise ConnectionError("broker away")
        return {tp: self.ends[tp] for tp in partitions}

    def highwater(self, tp: TP) -> int | None:
        return self.watermarks.get(tp)

    async def position(self, tp: TP) -> int:
        return self.positions[tp]


def _lag(group: str, topic: str, partition: int) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(
        "oriole_consumer_lag", {"group": group, "topic": topic, "partition": str(partition)}
    )


@pytest.fixture
def clean_lag() -> Iterator[None]:
    yield
    CONSUMER_LAG.clear()


@pytest.mark.asyncio
@pytest.mark.usefixtures("clean_lag")
async def test_lag_is_the_watermark_minus_the_position_and_follows_the_assignment() -> None:
    a0, a1 = TP("t.events", 0), TP("t.events", 1)
    consumer = FakeConsumer(ends={a0: 10, a1: 7}, positions={a0: 4, a1: 7})
    totals: list[float] = []
    monitor = LagMonitor()
    monitor.watch(lambda: [("g1", consumer), ("g-unstarted", None)], total=totals.append)
    await monitor.refresh()
    assert _lag("g1", "t.events", 0) == 6
    assert _lag("g1", "t.events", 1) == 0
    assert totals == [6]
    # Partition 0 goes to another process (rebalance): its series goes, the other stays.
    del consumer.positions[a0]
    consumer.positions[a1] = 5
    await monitor.refresh()
    assert _lag("g1", "t.events", 0) is None
    assert _lag("g1", "t.events", 1) == 2
    assert totals[-1] == 2
    # No ListOffsets answer: the watermark of the last fetch stands in.
    consumer.end_offsets_fail = True
    consumer.watermarks[a1] = 9
    await monitor.refresh()
    assert _lag("g1", "t.events", 1) == 4
    # A position past a stale end never shows a negative lag.
    consumer.positions[a1] = 12
    await monitor.refresh()
    assert _lag("g1", "t.events", 1) == 0


@pytest.mark.asyncio
@pytest.mark.usefixtures("clean_lag")
async def test_a_consumer_that_cannot_answer_keeps_its_last_figures_and_hurts_no_other() -> None:
    good_tp, bad_tp = TP("t.a", 0), TP("t.b", 0)
    good = FakeConsumer(ends={good_tp: 5}, positions={good_tp: 1})
    bad = FakeConsumer(ends={bad_tp: 3}, positions={bad_tp: 0})
    monitor = LagMonitor()
    monitor.watch(lambda: [("good", good), ("bad", bad)])
    await monitor.refresh()
    assert _lag("bad", "t.b", 0) == 3

    def broken() -> set[Any]:
        raise RuntimeError("consumer stopped")

    bad.assignment = broken  # type: ignore[method-assign]
    good.positions[good_tp] = 5
    await monitor.refresh()
    assert _lag("good", "t.a", 0) == 0
    assert _lag("bad", "t.b", 0) == 3


# --- batch gauges ---------------------------------------------------------------------------


@dataclass
class FakeBatch:
    active: bool
    spent_usd: float
    planned: int

    def counts(self) -> Any:
        from oriole.batch_events import BatchCounts

        return BatchCounts(
            planned=self.planned,
            launched=3,
            finished=2,
            succeeded=1,
            failed=1,
            in_flight=1,
            spent_usd=self.spent_usd,
            spent_tokens=0,
        )


def _batch(name: str, **labels: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels)


def test_batch_series_exist_while_the_batch_runs_and_go_when_it_finishes() -> None:
    running = FakeBatch(active=True, spent_usd=0.25, planned=6)
    no_budget = FakeBatch(active=True, spent_usd=0.0, planned=2)
    states: dict[str, Any] = {"b-run": running, "b-free": no_budget}
    metrics.show_batches(states, {"b-run": 1.5, "b-free": None})
    assert _batch("oriole_batch_runs", batch_id="b-run", state="planned") == 6
    assert _batch("oriole_batch_runs", batch_id="b-run", state="succeeded") == 1
    assert _batch("oriole_batch_runs", batch_id="b-run", state="in_flight") == 1
    assert _batch("oriole_batch_spent_usd", batch_id="b-run") == 0.25
    assert _batch("oriole_batch_budget_usd", batch_id="b-run") == 1.5
    assert _batch("oriole_batch_budget_usd", batch_id="b-free") is None
    running.active = False  # finished
    metrics.show_batches(states, {"b-run": 1.5, "b-free": None})
    for state in metrics.BATCH_STATES:
        assert _batch("oriole_batch_runs", batch_id="b-run", state=state) is None
    assert _batch("oriole_batch_spent_usd", batch_id="b-run") is None
    assert _batch("oriole_batch_budget_usd", batch_id="b-run") is None
    assert _batch("oriole_batch_runs", batch_id="b-free", state="planned") == 2
    metrics.show_batches({}, {})  # revoked: this scheduler shows nothing
    assert _batch("oriole_batch_runs", batch_id="b-free", state="planned") is None


# --- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "default", "listen"),
    [
        (None, 9464, ("127.0.0.1", 9464)),
        (None, None, None),
        ("", 9465, ("127.0.0.1", 9465)),
        ("off", 9464, None),
        (" OFF ", None, None),
        ("0", 9464, ("127.0.0.1", 0)),
        (9470, None, ("127.0.0.1", 9470)),
        ("0.0.0.0:9100", 9464, ("0.0.0.0", 9100)),
        ("[::]:9100", 9464, ("::", 9100)),
    ],
)
def test_metrics_port_values(value: object, default: int | None, listen: object) -> None:
    overrides = {} if value is None else {"metrics_port": value}
    current = load_settings(env_file=None, **overrides)
    assert current.metrics_listen(default) == listen


@pytest.mark.parametrize("value", ["on", "65536", "-1", ":9464", "::1:9464", "9464x"])
def test_bad_metrics_ports_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None, metrics_port=value)
    assert error.value.field == "ORIOLE_METRICS_PORT"


def test_metrics_port_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIOLE_METRICS_PORT", "127.0.0.2:0")
    assert load_settings(env_file=None).metrics_listen(9464) == ("127.0.0.2", 0)
    assert json.dumps(load_settings(env_file=None).metrics_port) == '"127.0.0.2:0"'


# --- docs/metrics.md names every metric -----------------------------------------------------


def test_every_oriole_metric_is_in_docs_metrics_md() -> None:
    from pathlib import Path

    from prometheus_client import REGISTRY

    import gateway.metrics
    import oriole.telemetry.lag
    import projections.projector
    import providers.metrics

    assert gateway.metrics and oriole.telemetry.lag and projections.projector and providers.metrics
    docs = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text()
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("oriole_"):
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    assert len(names) >= 35
    missing = sorted(name for name in names if f"`{name}`" not in docs)
    assert not missing, f"docs/metrics.md does not list {missing}"


# --- the listener of a standalone command ---------------------------------------------------


@pytest.mark.asyncio
async def test_a_taken_default_port_falls_back_and_a_configured_one_is_an_error(
    tmp_path: Any,
) -> None:
    import socket

    from oriole.cli.services import Services
    from oriole.errors import OrioleError
    from oriole.kafka.topics import Topics

    def services(**overrides: Any) -> Services:
        current = load_settings(env_file=None, home=tmp_path, **overrides)
        return Services(current, "127.0.0.1:1", Topics.from_settings(current), None)  # type: ignore[arg-type]

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        default = services().telemetry(
            "worker", health=lambda: {"w": True}, consumers=list, default_port=port
        )
        async with default as server:
            assert server is not None and server.port not in (0, port)
            async with httpx.AsyncClient(timeout=30) as client:
                assert (await client.get(f"{server.url}/healthz")).status_code == 200
        configured = services(metrics_port=str(port)).telemetry(
            "worker", health=lambda: {"w": True}, consumers=list, default_port=9464
        )
        with pytest.raises(OrioleError, match="ORIOLE_METRICS_PORT"):
            async with configured:
                pass
    off = services(metrics_port="off").telemetry(
        "projector", health=lambda: {"p": True}, consumers=list, default_port=9465
    )
    async with off as nothing:
        assert nothing is None
