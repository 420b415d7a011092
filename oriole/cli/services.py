"""Service wiring: the one place that builds the worker, the projector and the gateway.

`oriole up` runs all three in one process and the standalone commands run one each; both
build them through :class:`Services`, so a setting reaches every service the same way.
Also here: the supervisor that restarts a failed service of `oriole up`, the signal
handling every long-running command shares, and each process's telemetry (consumer lag of
its services, and /metrics and /healthz of a standalone command on ``ORIOLE_METRICS_PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from gateway.server import Gateway
from oriole.backoff import Backoff
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import Settings
from oriole.errors import OrioleError
from oriole.kafka import ensure_topics, wait_for_broker
from oriole.kafka.topics import Topics
from oriole.telemetry.lag import ConsumerSource, LagMonitor
from oriole.telemetry.metrics_http import HealthCheck, MetricsServer
from projections.archive_reader import ArchiveReader
from projections.database import configured_dsn
from projections.projector import LAG_EVENTS as PROJECTOR_LAG_EVENTS
from projections.projector import Projector
from streams.worker import Worker

log = logging.getLogger("oriole.cli")

#: Longest wait before a failed service of `oriole up` is started again.
SUPERVISOR_MAX_DELAY = 30.0
#: Default ports of /metrics and /healthz (``ORIOLE_METRICS_PORT`` unset); the gateway serves
#: both on its own port and opens another only when one is configured.
WORKER_METRICS_PORT = 9464
PROJECTOR_METRICS_PORT = 9465


@dataclass(frozen=True, slots=True)
class Services:
    """What the services of one process share: settings, broker, topics, one maze catalogue."""

    settings: Settings
    bootstrap_servers: str
    topics: Topics
    catalogue: MazeCatalogue

    async def join_broker(self) -> None:
        """Wait for the broker and create any missing topic."""
        await wait_for_broker(self.bootstrap_servers)
        await ensure_topics(self.bootstrap_servers, self.topics.specs)

    def worker(self, pool: Any = None) -> Worker:
        """A worker; it reads forks' parents through ``pool`` (`oriole up`'s), else through a
        pool of its own opened at the first fork when a database is configured."""
        dsn = None if pool is not None else configured_dsn(self.settings)
        reader = (
            ArchiveReader(pool=pool)
            if pool is not None
            else ArchiveReader(dsn=dsn, settings=self.settings)
            if dsn is not None
            else None
        )
        return Worker.create(
            self.settings,
            self.bootstrap_servers,
            self.topics,
            self.catalogue.get,
            parents=None if reader is None else reader.parents,
            batch_parents=None if reader is None else reader.batch_parents,
            closers=[] if reader is None else [reader.close],
        )

    def projector(self, pool: Any) -> Projector:
        return Projector(
            bootstrap_servers=self.bootstrap_servers,
            topics=self.topics,
            pool=pool,
            client_id=self.settings.kafka_client_id,
            batch_size=self.settings.projection_batch_size,
        )

    def gateway(self, pool: Any) -> Gateway:
        return Gateway(
            self.settings,
            bootstrap_servers=self.bootstrap_servers,
            topics=self.topics,
            pool=pool,
            find_maze=self.catalogue.get,
        )

    @contextlib.asynccontextmanager
    async def telemetry(
        self,
        process: str,
        *,
        health: HealthCheck,
        consumers: ConsumerSource,
        default_port: int | None,
        lag_total: Callable[[float], None] | None = None,
    ) -> AsyncIterator[MetricsServer | None]:
        """The consumer lag of a standalone command's service and, unless
        ``ORIOLE_METRICS_PORT`` is off, its /metrics and /healthz listener."""
        monitor = LagMonitor()
        monitor.watch(consumers, total=lag_total)
        listen = self.settings.metrics_listen(default_port)
        async with monitor:
            if listen is None:
                yield None
                return
            server = MetricsServer(host=listen[0], port=listen[1], process=process, health=health)
            try:
                await server.start()
            except OSError as exc:
                if self.settings.metrics_port is not None:
                    raise OrioleError(
                        f"the {process} cannot serve /metrics on {listen[0]}:{listen[1]} "
                        f"({exc.strerror or exc}); choose another port with "
                        "ORIOLE_METRICS_PORT or --metrics-port (0: a free port, off: none)"
                    ) from exc
                # The default port, taken by another worker on this host: carry on.
                log.warning(
                    "the default metrics port %s of the %s is taken (%s); using a free one",
                    listen[1],
                    process,
                    exc.strerror or exc,
                )
                server.requested_port = 0
                await server.start()
            try:
                yield server
            finally:
                await server.stop()


def stack_lag_monitor(
    workers: Supervised[Worker], projectors: Supervised[Projector], gateway: Gateway
) -> LagMonitor:
    """The consumer lag of every service of `oriole up` (served by its gateway's /metrics);
    asks the supervisors for the current instances, so a restarted service is followed."""
    monitor = LagMonitor()
    monitor.watch(lambda: workers.current.consumers())
    monitor.watch(lambda: projectors.current.consumers(), total=PROJECTOR_LAG_EVENTS.set)
    monitor.watch(gateway.consumers)
    return monitor


async def until_signalled(
    main: Callable[[asyncio.Event], Awaitable[None]], grace: float = 15.0
) -> None:
    """Run ``main(stop)``; SIGINT and SIGTERM set ``stop`` for a clean shutdown.

    A clean shutdown may wait for a broker that is gone: after ``grace`` seconds, or at a
    second signal, ``main`` is cancelled, so a signal is always obeyed.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main(stop))

    def signalled() -> None:
        if stop.is_set():
            log.warning("second signal: stopping now")
            task.cancel()
            return
        stop.set()
        loop.call_later(grace, task.cancel)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class _Service(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


S = TypeVar("S", bound=_Service)


class Supervised(Generic[S]):
    """One service of `oriole up`, started again if it fails: it never takes the stack down.

    A service that raises (whatever the cause) is logged with its traceback and replaced by
    a fresh instance after a capped exponential backoff, while the broker, the database and
    the other services go on; with the embedded broker, stopping the stack would lose every
    run in flight.
    """

    def __init__(self, name: str, create: Callable[[], S], *, first_delay: float = 1.0) -> None:
        self.name = name
        self.create = create
        self.current: S = create()
        self.first_delay = first_delay
        self.restarts = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(first=self.first_delay, cap=SUPERVISOR_MAX_DELAY)
        while not stop.is_set():
            try:
                await self.current.run(stop)
            except Exception:
                delay = backoff.next_delay()
                log.exception("the %s failed; starting it again in %.1f s", self.name, delay)
            else:
                if stop.is_set():
                    return
                delay = backoff.next_delay()
                log.error("the %s stopped by itself; starting it again in %.1f s", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            self.restarts += 1
            self.current = self.create()
