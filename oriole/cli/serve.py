"""`oriole up`, `oriole worker`, `oriole projector`, `oriole gateway`: running the services.

`up` is the whole stack in one process (an embedded broker unless one is configured, the
database, the gateway, a supervised worker and projector); the others run one service
against a stack that is already there. All of them build services with :class:`Services`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from gateway.server import Gateway
from oriole import generators
from oriole.cli.common import catalogue, console, settings, stack_connection, stack_topics
from oriole.cli.run import publish_and_follow
from oriole.cli.run_display import print_summary
from oriole.cli.services import (
    PROJECTOR_METRICS_PORT,
    WORKER_METRICS_PORT,
    Services,
    Supervised,
    stack_lag_monitor,
    until_signalled,
)
from oriole.environment.logs import configure_logging
from oriole.environment.settings import Settings, load_settings
from oriole.environment.stack_file import (
    Connection,
    StackInfo,
    clean_stale_stack,
    remove_stack,
    write_stack,
)
from oriole.errors import OrioleError, ValidationError
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, prepare_clients
from oriole.kafka.rdkafka_bridge import RdkafkaBridge
from oriole.kafka.topics import Topics
from oriole.telemetry.tracing import configure_tracing
from projections.database import Database, open_database, redact
from projections.projector import LAG_EVENTS as PROJECTOR_LAG_EVENTS
from projections.projector import Projector
from projections.replay_source import (
    republish_unstarted_requests,
    restore_unfinished_batches,
    restore_unfinished_runs,
)
from streams.worker import Worker

log = logging.getLogger("oriole.cli")

DEMO_MAZE = "demo-backtracker-41x41"


# --- oriole up ------------------------------------------------------------------------------


def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also run a demo experiment and show its progress.")
    ] = False,
) -> None:
    """Start the broker (embedded unless configured) and a worker; Ctrl-C stops everything."""
    current = settings()
    configure_logging(current)
    configure_tracing(current, "up")
    # Stopping drains the projector (up to 20 s) before the broker goes: a longer grace.
    asyncio.run(until_signalled(lambda stop: _up(current, stop, demo), grace=60.0))


async def _up(current: Settings, stop: asyncio.Event, demo: bool) -> None:
    broker: EmbeddedBroker | None = None
    bridge: RdkafkaBridge | None = None
    home = current.home
    clean_stale_stack(home)  # left by an `oriole up` killed with -9 (logged)
    try:
        if current.embedded_broker:
            broker = EmbeddedBroker(log_dir=current.log_dir)
            await broker.start()
            bootstrap = broker.bootstrap_servers
            # librdkafka clients (kcat, confluent-kafka) cannot talk to Tansu directly.
            bridge = await RdkafkaBridge("127.0.0.1", broker.port).start()
        else:
            bootstrap = current.kafka_bootstrap_servers
        prepare_clients(broker is not None or current.tansu_broker)
        services = Services(current, bootstrap, Topics.from_settings(current), catalogue())
        await services.join_broker()
        async with open_database(current) as db:
            gateway = services.gateway(db.pool)
            try:
                await gateway.start()
            except OSError as exc:
                raise OrioleError(
                    f"the gateway cannot listen on {current.gateway_host}:"
                    f"{current.gateway_port} ({exc.strerror or exc}); is another `oriole up` "
                    "running? Choose another port with ORIOLE_GATEWAY_PORT"
                ) from exc
            try:
                await _serve(services, stop, demo, broker, bridge, db, gateway)
            finally:
                await gateway.stop()
    finally:
        remove_stack(home, os.getpid())
        if bridge is not None:
            await bridge.stop()
        if broker is not None:
            await broker.stop()
        console.print("Oriole stopped.")


async def _serve(
    services: Services,
    stop: asyncio.Event,
    demo: bool,
    broker: EmbeddedBroker | None,
    bridge: RdkafkaBridge | None,
    db: Database,
    gateway: Gateway,
) -> None:
    """Everything that runs once broker, database and gateway are up."""
    current, topics = services.settings, services.topics
    tansu = broker is not None or current.tansu_broker
    info = StackInfo(
        pid=os.getpid(),
        kafka_bootstrap_servers=services.bootstrap_servers,
        broker_kind="tansu" if tansu else "kafka",
        topic_prefix=topics.prefix,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rdkafka_bootstrap_servers=None if bridge is None else bridge.bootstrap_servers,
        # Only the embedded server's DSN (no password in it) goes into the file.
        database_url=db.dsn if db.embedded is not None else None,
        gateway_url=gateway.url,
    )
    stack_file = write_stack(current.home, info)
    workers = Supervised("worker", lambda: services.worker(db.pool))
    projectors = Supervised("projector", lambda: services.projector(db.pool))
    if broker is not None:
        restored = await restore_unfinished_runs(db.pool, services.bootstrap_servers, topics)
        _report("Restored", "unfinished run(s) from the archive", restored)
        batches = await restore_unfinished_batches(db.pool, services.bootstrap_servers, topics)
        _report("Restored", "unfinished batch(es) from the archive", batches)
        requested = await republish_unstarted_requests(db.pool, services.bootstrap_servers, topics)
        _report("Published again", "start request(s) that never became runs", requested)
    _print_banner(current, info, topics, broker, bridge, db, stack_file)
    async with stack_lag_monitor(workers, projectors, gateway):
        await _run_services(workers, projectors, stop, demo, info)


async def _run_services(
    workers: Supervised[Worker],
    projectors: Supervised[Projector],
    stop: asyncio.Event,
    demo: bool,
    info: StackInfo,
) -> None:
    worker_stop, projector_stop = asyncio.Event(), asyncio.Event()
    worker_task = asyncio.create_task(workers.run(worker_stop), name="worker")
    projector_task = asyncio.create_task(projectors.run(projector_stop), name="projector")
    demo_task = asyncio.create_task(_demo(workers.current, info), name="demo") if demo else None
    await stop.wait()
    if demo_task is not None:
        demo_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await demo_task
    # Workers first, then let the projector archive what they wrote: with the
    # embedded broker, whatever is not archived now is gone.
    worker_stop.set()
    try:
        await worker_task
    finally:
        if not projector_task.done():
            await projectors.current.drain(timeout=20)
        projector_stop.set()
        await projector_task


def _report(verb: str, what: str, run_ids: list[str]) -> None:
    if run_ids:
        shown = ", ".join(run_ids[:5]) + (" ..." if len(run_ids) > 5 else "")
        console.print(f"{verb} {len(run_ids)} {what}: {shown}")


def _print_banner(
    current: Settings,
    info: StackInfo,
    topics: Topics,
    broker: EmbeddedBroker | None,
    bridge: RdkafkaBridge | None,
    db: Database,
    stack_file: Path,
) -> None:
    table = Table.grid(padding=(0, 2))
    kind = "embedded Tansu, memory only" if broker else "configured"
    table.add_row("Kafka", f"{info.kafka_bootstrap_servers} ({kind})")
    if bridge is not None:
        table.add_row("Kafka for kcat", f"{bridge.bootstrap_servers} (librdkafka clients)")
    table.add_row("Topics", f"{topics.prefix}.* ({topics.partitions} partitions each)")
    table.add_row("Start events", topics.experiments_start)
    table.add_row("Run events", topics.runs_events)
    if db.embedded is not None:
        table.add_row("PostgreSQL", f"embedded, data in {db.embedded.data_dir}")
    else:
        table.add_row("PostgreSQL", redact(db.dsn))
    table.add_row("Viewer", f"{info.gateway_url}/  (live runs, replay, read API)")
    table.add_row("SQL", 'psql "$(oriole db url)"  (tables and views: docs/views.md)')
    table.add_row("Home", str(current.home))
    table.add_row("Stack file", str(stack_file))
    if broker is not None and broker.log_path is not None:
        table.add_row("Broker log", str(broker.log_path))
    console.print(Panel(table, title="Oriole is up", subtitle="Ctrl-C to stop"))


async def _demo(worker: Worker, info: StackInfo) -> None:
    await worker.wait_ready()
    library = catalogue()
    try:
        maze = library.get(DEMO_MAZE)
    except ValidationError:
        maze = generators.generate("backtracker", 41, 41, seed=1, name=DEMO_MAZE, density=0.3)
        library.add(maze)
    request = ExperimentStart(
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="frontier", seed=1),
        comment="demo",
        limits=RunLimits(max_footsteps=2000),
    )
    conn = Connection(info.kafka_bootstrap_servers, info.broker_kind == "tansu", info.topic_prefix)
    console.print(f"Demo: frontier agent on {maze.name} (run {request.run_id})")
    ended = await publish_and_follow(conn, request, show_progress=True, timeout=None)
    print_summary(ended)
    console.print(
        "The stack keeps running: try `oriole run --maze "
        f"{maze.name} --agent builtin:random --wait` in another terminal."
    )


# --- one service on its own -----------------------------------------------------------------


MetricsPortOption = Annotated[
    str | None,
    typer.Option(
        "--metrics-port",
        help="Where to serve /metrics and /healthz: off, a port (0: a free one) or host:port. "
        "Overrides ORIOLE_METRICS_PORT.",
        show_default=False,
    ),
]


def _standalone(metrics_port: str | None = None) -> Services:
    """Settings, logging and the broker to join, for a service run on its own."""
    current = settings()
    if metrics_port is not None:
        current = load_settings(metrics_port=metrics_port)
    configure_logging(current)
    conn = stack_connection()
    return Services(current, conn.bootstrap_servers, stack_topics(conn), catalogue())


def worker(metrics_port: MetricsPortOption = None) -> None:
    """Run one worker (maze processor + agent runner) against the configured Kafka.

    Start several to share the load: they form consumer groups and split the partitions.
    /metrics and /healthz: 127.0.0.1:9464 unless ORIOLE_METRICS_PORT says otherwise.
    """
    services = _standalone(metrics_port)
    configure_tracing(services.settings, "worker")

    async def main(stop: asyncio.Event) -> None:
        worker = services.worker()
        async with services.telemetry(
            "worker",
            health=worker.health,
            consumers=worker.consumers,
            default_port=WORKER_METRICS_PORT,
        ):
            await services.join_broker()
            log.info("worker connected to %s", services.bootstrap_servers)
            await worker.run(stop)

    asyncio.run(until_signalled(main))


def projector(metrics_port: MetricsPortOption = None) -> None:
    """Run one projector: run events into the PostgreSQL archive and projections.

    Start several to share the load; while PostgreSQL is down they wait and catch up later.
    /metrics and /healthz: 127.0.0.1:9465 unless ORIOLE_METRICS_PORT says otherwise.
    """
    services = _standalone(metrics_port)
    configure_tracing(services.settings, "projector")

    async def main(stop: asyncio.Event) -> None:
        await services.join_broker()
        async with open_database(services.settings) as db:
            log.info("projector connected to %s and %s", services.bootstrap_servers, redact(db.dsn))
            projector = services.projector(db.pool)
            async with services.telemetry(
                "projector",
                health=lambda: {"projector": projector.healthy()},
                consumers=projector.consumers,
                default_port=PROJECTOR_METRICS_PORT,
                lag_total=PROJECTOR_LAG_EVENTS.set,
            ):
                await projector.run(stop)

    asyncio.run(until_signalled(main))


def gateway(metrics_port: MetricsPortOption = None) -> None:
    """Run the websocket/HTTP gateway (viewer, live feeds, read API) on its own.

    It reads the archive and tails the run events topic; start several behind a load
    balancer if one is not enough (each tails the topic on its own). Its own port serves
    /metrics and /healthz; ORIOLE_METRICS_PORT (or --metrics-port) opens another for them.
    """
    services = _standalone(metrics_port)
    configure_tracing(services.settings, "gateway")

    async def main(stop: asyncio.Event) -> None:
        await services.join_broker()
        async with open_database(services.settings) as db:
            gateway = services.gateway(db.pool)
            async with services.telemetry(
                "gateway",
                health=lambda: {"gateway": gateway.healthy()},
                consumers=gateway.consumers,
                default_port=None,
            ):
                await gateway.run(stop)

    asyncio.run(until_signalled(main))
