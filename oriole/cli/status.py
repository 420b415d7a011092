"""`oriole status`: the health of a deployment on one screen, for people and for scripts.

Each check asks the real thing — the broker (its consumer groups, their members and
committed offsets), PostgreSQL (reachable, migrated, runs and batches in flight), the
processes' /metrics (model endpoints and breakers) — with a short timeout, so a stopped
service shows up as a failed check rather than a hang. Exit status 1 when a check failed
(0 with warnings only), so health checks and scripts can use it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import asyncpg
import httpx
import typer
from aiokafka import TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client.parser import text_string_to_metric_families
from rich.markup import escape
from rich.table import Table

from oriole.cli.common import console, print_json, settings, stack_connection, stack_topics
from oriole.cli.services import PROJECTOR_METRICS_PORT, WORKER_METRICS_PORT
from oriole.environment.stack_file import read_stack
from oriole.kafka.clients import make_admin, make_consumer
from oriole.kafka.topics import Topics
from projections.database import configured_dsn
from projections.migrate import applied_migrations, available_migrations

Level = Literal["ok", "warn", "fail"]
#: Each question to a service gets this long before it counts as unanswered.
TIMEOUT = 10.0
#: Lag (records) of one group above which the status warns.
LAG_WARNING = 1000
#: The groups of the services, by the suffix after the topic prefix, and who runs them.
GROUPS = {
    "maze-processor": "worker",
    "agent-runner": "worker",
    "batch-scheduler": "worker",
    "batch-forwarder": "worker",
    "projector": "projector",
}
_BREAKER = {0.0: "closed", 1.0: "half-open", 2.0: "open"}
_RUNNING_RUNS = "SELECT count(*) FROM experiments WHERE status = 'running'"
_RUNNING_BATCHES = "SELECT count(*) FROM batches WHERE status = 'running'"


@dataclass
class Check:
    name: str
    level: Level
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


async def _broker_checks(topics: Topics, bootstrap: str) -> list[Check]:
    admin = make_admin(bootstrap_servers=bootstrap, client_id="oriole-status")
    try:
        await asyncio.wait_for(admin.start(), TIMEOUT)
    except Exception as exc:
        return [Check("broker", "fail", f"{bootstrap} unreachable ({type(exc).__name__})")]
    try:
        names = set(await asyncio.wait_for(admin.list_topics(), TIMEOUT))
        missing = [t.name for t in topics.specs if t.name not in names]
        checks = [
            Check(
                "broker",
                "fail" if missing else "ok",
                f"{bootstrap}: " + (f"topics missing: {', '.join(missing)}" if missing else
                                    f"{len(topics.specs)} topics"),
            )
        ]  # fmt: skip
        groups = {f"{topics.prefix}.{suffix}": role for suffix, role in GROUPS.items()}
        for group_id in groups:  # one group per request: Tansu cannot answer several at once
            described = await asyncio.wait_for(admin.describe_consumer_groups([group_id]), TIMEOUT)
            checks.extend(_group_checks(described, groups))
        checks.extend(await _lag_and_dead_letters(topics, bootstrap, list(groups), checks))
        return checks
    except Exception as exc:
        return [Check("broker", "fail", f"{bootstrap}: {type(exc).__name__}: {exc}")]
    finally:
        await admin.close()


def _group_checks(responses: list[Any], roles: dict[str, str]) -> list[Check]:
    """Members of each service's consumer group and the partitions each owns (from the raw
    DescribeGroups answers: aiokafka returns them undecoded)."""
    checks: list[Check] = []
    for response in responses:
        for group in response.groups:
            group_id, state, members = group[1], group[2], group[5]
            role = roles.get(group_id, "?")
            owned: dict[str, list[int]] = {}
            for member in members:
                host = f"{member[1] or member[0]}@{member[2] or '?'}"
                try:
                    assignment = ConsumerProtocolMemberAssignment.decode(member[4])
                    owned[host] = sorted(p for _, parts in assignment.assignment for p in parts)
                except Exception:  # not reported (Tansu): the processes' /metrics say it
                    owned[host] = []
            if not members:
                checks.append(
                    Check(f"group {group_id}", "fail", f"no {role} consuming ({state or 'empty'})")
                )
                continue
            shown = "; ".join(f"{host} {parts}" if parts else host for host, parts in owned.items())
            checks.append(
                Check(
                    f"group {group_id}",
                    "ok",
                    f"{len(members)} {role}(s): {shown}",
                    {"members": len(members), "partitions": owned},
                )
            )
    return checks


async def _lag_and_dead_letters(
    topics: Topics, bootstrap: str, groups: list[str], so_far: list[Check]
) -> list[Check]:
    """Lag of each group from its committed offsets; dead letters written in the last hour."""
    wanted = {
        f"{topics.prefix}.maze-processor": [topics.experiments_start, topics.runs_commands],
        f"{topics.prefix}.projector": [topics.runs_events, topics.batches_events],
    }
    out: list[Check] = []
    reader = make_consumer(bootstrap_servers=bootstrap, group_id=None, client_id="oriole-status")
    await asyncio.wait_for(reader.start(), TIMEOUT)
    try:
        for group, group_topics in wanted.items():
            partitions = [tp for t in group_topics for tp in _partitions(reader, t)]
            ends = await asyncio.wait_for(reader.end_offsets(partitions), TIMEOUT)
            committed = make_consumer(
                bootstrap_servers=bootstrap, group_id=group, client_id="oriole-status",
                enable_auto_commit=False,
            )  # fmt: skip
            await asyncio.wait_for(committed.start(), TIMEOUT)
            try:
                lag = 0
                for tp in partitions:
                    done = await asyncio.wait_for(committed.committed(tp), TIMEOUT)
                    lag += max(0, ends[tp] - (done or 0))
            finally:
                await committed.stop()
            level: Level = "warn" if lag > LAG_WARNING else "ok"
            out.append(Check(f"lag {group}", level, f"{lag} records behind", {"lag": lag}))
        partitions = _partitions(reader, topics.deadletter)
        hour_ago = int((time.time() - 3600) * 1000)
        starts = await asyncio.wait_for(
            reader.offsets_for_times({tp: hour_ago for tp in partitions}), TIMEOUT
        )
        ends = await asyncio.wait_for(reader.end_offsets(partitions), TIMEOUT)
        recent = sum(
            ends[tp] - (found.offset if found is not None else ends[tp])
            for tp, found in starts.items()
        )
        out.append(
            Check(
                "dead letters",
                "warn" if recent else "ok",
                f"{recent} in the last hour on {topics.deadletter}",
                {"last_hour": recent},
            )
        )
    finally:
        await reader.stop()
    return out


def _partitions(reader: Any, topic: str) -> list[Any]:
    return [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]


async def _database_checks(dsn: str | None) -> list[Check]:
    if dsn is None:
        return [Check("database", "fail", "none configured and no stack running")]
    try:
        conn = await asyncpg.connect(dsn, timeout=TIMEOUT)
    except Exception as exc:
        return [Check("database", "fail", f"unreachable ({type(exc).__name__})")]
    try:
        applied = {m.version for m in await applied_migrations(conn)}
        shipped = {m.version for m in available_migrations()}
        pending = sorted(shipped - applied)
        checks = [
            Check(
                "database",
                "fail" if pending else "ok",
                f"migrations pending: {pending}" if pending else f"migrated ({max(shipped)})",
            )
        ]
        if not pending:
            running = await conn.fetchval(
                "SELECT count(*) FROM experiments WHERE status = 'running'"
            )
            batches = await conn.fetchval("SELECT count(*) FROM batches WHERE status = 'running'")
            checks.append(
                Check("in flight", "ok", f"{running} runs, {batches} batches",
                      {"runs": running, "batches": batches})
            )  # fmt: skip
        return checks
    finally:
        await conn.close()


async def _process_checks(bases: list[str]) -> list[Check]:
    """Each process's own health (``/healthz``: a stopped or stuck worker or projector shows
    here, whatever the broker says of its group), then its /metrics: the model endpoints'
    breakers and the partitions its consumers own."""
    checks: list[Check] = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for base in bases:
            try:
                health = await client.get(f"{base}/healthz")
            except httpx.HTTPError as exc:
                checks.append(Check(f"process {base}", "fail", f"no answer ({type(exc).__name__})"))
                continue
            checks.append(_health_check(base, health))
            try:
                answer = await client.get(f"{base}/metrics")
                answer.raise_for_status()
            except httpx.HTTPError as exc:
                checks.append(
                    Check(f"metrics {base}", "warn", f"no metrics ({type(exc).__name__})")
                )
                continue
            checks.extend(_metric_checks(base, answer.text))
    return checks


def _health_check(base: str, answer: httpx.Response) -> Check:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    # A standalone listener names its process and services; the gateway's own /healthz (and
    # so `oriole up`'s) reports whether it reaches Kafka and PostgreSQL.
    process = body.get("process") or "gateway"
    services = body.get("services") or {k: v for k, v in body.items() if isinstance(v, bool)}
    if answer.status_code == 200:
        return Check(f"process {base}", "ok", f"{process}: healthy", {"services": services})
    down = [name for name, ok in services.items() if not ok] if isinstance(services, dict) else []
    detail = f"{process}: unhealthy ({', '.join(down) or f'HTTP {answer.status_code}'})"
    return Check(f"process {base}", "fail", detail, {"services": services})


def _metric_checks(base: str, text: str) -> list[Check]:
    checks: list[Check] = []
    owned: dict[str, set[int]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if family.name == "oriole_consumer_lag":
                group = labels["group"].rsplit(".", 1)[-1]
                owned.setdefault(group, set()).add(int(labels["partition"]))
            elif family.name == "oriole_provider_breaker_state":
                state = _BREAKER.get(sample.value, str(sample.value))
                name = f"endpoint {labels.get('provider')} {labels.get('endpoint')}"
                checks.append(
                    Check(name, "ok" if state == "closed" else "warn", f"breaker {state}")
                )
    if owned:
        shown = "; ".join(f"{g} {_ranges(sorted(p))}" for g, p in sorted(owned.items()))
        partitions = {g: sorted(p) for g, p in owned.items()}
        checks.append(Check(f"partitions at {base}", "ok", shown, partitions))
    return checks


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5"."""
    parts: list[str] = []
    for n in numbers:
        if parts and "-" not in parts[-1].rsplit(",", 1)[-1] and int(parts[-1]) == n - 1:
            parts[-1] = f"{n - 1}-{n}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == n - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ",".join(parts)


def _process_urls(explicit: list[str]) -> list[str]:
    """Which processes to ask: the given ones, else the local `oriole up` (its gateway serves
    every metric and asks Kafka and PostgreSQL in /healthz), else a worker and a projector on
    their default metrics ports."""
    if explicit:
        return [url.rstrip("/") for url in explicit]
    info = read_stack(settings().home)
    if info is not None and info.gateway_url:
        return [info.gateway_url.rstrip("/")]
    return [f"http://127.0.0.1:{port}" for port in (WORKER_METRICS_PORT, PROJECTOR_METRICS_PORT)]


async def gather_status(processes: list[str]) -> list[Check]:
    checks: list[Check] = []
    try:
        conn = stack_connection()
    except Exception as exc:
        checks.append(Check("broker", "fail", str(exc)))
    else:
        checks += await _broker_checks(stack_topics(conn), conn.bootstrap_servers)
    checks += await _database_checks(configured_dsn(settings()))
    checks += await _process_checks(_process_urls(processes))
    return checks


_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def status(
    process: Annotated[
        list[str] | None,
        typer.Option(
            "--process",
            help="Base URL of a process's /healthz and /metrics (e.g. http://worker-1:9464); "
            "repeatable. Default: the local `oriole up`, else a worker on 9464 and a "
            "projector on 9465 here.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Is everything healthy? Broker, consumer groups, lag, dead letters in the last hour,
    database and migrations, runs and batches in flight, each process's health, the
    partitions it owns and its model endpoints' breakers. Exit status 1 when a check failed."""
    checks = asyncio.run(gather_status(list(process or [])))
    healthy = all(check.level != "fail" for check in checks)
    if as_json:
        print_json({"healthy": healthy, "checks": [asdict(check) for check in checks]})
    else:
        table = Table(title="Oriole status", show_header=False)
        for check in checks:
            level = f"[{_STYLE[check.level]}]{check.level}[/]"
            table.add_row(level, escape(check.name), escape(check.detail))
        console.print(table)
        console.print("healthy" if healthy else "[bold red]unhealthy[/]")
    if not healthy:
        raise typer.Exit(1)
