"""The gateway process: HTTP and websockets on one port (docs/gateway.md is the contract).

One ``websockets`` asyncio server (compression off). Plain HTTP routes are answered from its
``process_request`` hook; websocket paths pass the hook (after authentication) and reach
:meth:`Gateway._handler`, which runs the client's feed in a task and reads (and ignores)
what the client sends, so that a closed connection is noticed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway import api
from gateway.batches import Batches
from gateway.commands import Commands
from gateway.exposure import check_exposure
from gateway.feeds import WRITE_LIMIT, Archive, Feeds, GapError, Session
from gateway.frames import (
    CLOSE_BAD_QUERY,
    CLOSE_INTERNAL,
    QueryError,
    RecentRuns,
    Target,
    error_frame,
    parse_run_query,
    split_target,
    valid_run_id,
    ws_route,
)
from gateway.guard import Gatekeeper, Policy, cancel_route, principals
from gateway.health import health_response
from gateway.http import (
    MAX_CLIENT_MESSAGE,
    content_type,
    error_response,
    gated,
    json_response,
    response,
    static_path,
)
from gateway.hub import Hub
from gateway.metrics import CLIENTS, HTTP_REQUESTS
from oriole.addresses import http_url
from oriole.environment.settings import Settings
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.topics import Topics
from oriole.llm.pricing import load_price_table
from oriole.maze import Maze
from projections.archive_reader import ArchiveReader
from projections.database import CONNECTION_ERRORS
from providers.factory import allowed_endpoints

log = logging.getLogger("oriole.gateway")
#: The websockets library's own logger. Kept at WARNING or above: at DEBUG it would log
#: request lines and headers, tokens included.
_WS_LOG = logging.getLogger("oriole.gateway.websockets")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Time the clients get to close cleanly when the gateway stops, before connections are cut.
STOP_TIMEOUT = 5.0
DATABASE_UNAVAILABLE = "the database is unavailable; try again"


class DatabaseTimeout(Exception):
    """PostgreSQL did not answer within ``gateway_database_timeout``."""


_DATABASE_DOWN: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, DatabaseTimeout)


class Gateway:
    """The websocket/HTTP gateway of one Oriole stack.

    ``settings.gateway_port`` 0 binds a free port (read :attr:`port` after :meth:`start`;
    ``Settings`` itself validates ports from 1, so pass ``settings.model_copy(update=...)``).
    ``find_maze`` is the process's one maze catalogue; the caller has prepared the Kafka
    clients for its broker (``oriole.kafka.prepare_clients``). ``unknown_run_grace`` is how
    long a one-run feed waits for the first live event of a run on its way but not archived
    (``gateway.feeds``) before closing with 4004; ``gap_deadline`` how long it waits for
    the projector to archive events it saw live beyond the archive's end.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        bootstrap_servers: str,
        topics: Topics,
        pool: Any,
        find_maze: Callable[[str], Maze],
        static_dir: Path | None = None,
        unknown_run_grace: float = 5.0,
        gap_deadline: float = 60.0,
    ) -> None:
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.pool = pool
        self.commands = Commands(
            topics=topics,
            find_maze=find_maze,
            prices=load_price_table(settings.price_file),
            endpoints=allowed_endpoints(settings),
            parents=None if pool is None else ArchiveReader(pool=pool).parents,
        )
        self.static_dir = static_dir or STATIC_DIR
        recent = RecentRuns()  # the runs the hub sees live, for the one-run feed
        self.hub = Hub(
            bootstrap_servers=bootstrap_servers,
            topic=topics.runs_events,
            client_id=f"{settings.kafka_client_id}-gateway",
            chunk=settings.gateway_client_queue_size // 2,
            decode=recent.decode,
        )
        self.feeds = Feeds(
            self.hub,
            Archive(pool),
            unknown_run_grace=unknown_run_grace,
            gap_deadline=gap_deadline,
            recent=recent,
        )
        self.batches = Batches(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            pool=pool,
            commands=self.commands,
            database=self._database,
            client_id=f"{settings.kafka_client_id}-gateway",
            chunk=settings.gateway_client_queue_size // 2,
            unknown_grace=unknown_run_grace,
            gap_deadline=gap_deadline,
        )
        self._tokens = principals(settings.gateway_tokens)
        self.gatekeeper = Gatekeeper(
            Policy(
                tokens=self._tokens,
                allowed_hosts=tuple(settings.gateway_allowed_hosts),
                max_body_bytes=settings.gateway_max_body_bytes,
                max_concurrent_bodies=settings.gateway_max_concurrent_bodies,
                rate_per_token=settings.gateway_rate_limit_per_token,
                rate_per_address=settings.gateway_rate_limit_per_address,
            )
        )
        #: Database work abandoned at its deadline, left to finish (or fail) on its own.
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._server: Server | None = None
        self._producer: Any = None
        self._sessions: set[Session] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the Kafka clients and bind; refuses an open bind without tokens."""
        if self._server is not None:
            raise RuntimeError("the gateway is already started")
        host = self.settings.gateway_host
        check_exposure(self.settings, has_tokens=bool(self._tokens))
        if _WS_LOG.getEffectiveLevel() < logging.WARNING:
            _WS_LOG.setLevel(logging.WARNING)
        try:
            await self.hub.start()
            await self.batches.start()
            self._producer = make_producer(
                self.bootstrap_servers, client_id=f"{self.settings.kafka_client_id}-gateway"
            )
            await self._producer.start()
            self.commands.producer = self._producer
            self._server = await serve(
                self._handler,
                host,
                self.settings.gateway_port,
                compression=None,
                process_request=self._process_request,
                create_connection=gated(self.gatekeeper),
                server_header="oriole-gateway",
                logger=_WS_LOG,
                max_size=MAX_CLIENT_MESSAGE,
                write_limit=WRITE_LIMIT,
                open_timeout=30,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=5,
            )
        except BaseException:
            await self._stop_clients()
            raise
        log.info("gateway listening on %s", self.url)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return http_url(self.settings.gateway_host, self.port)

    async def stop(self) -> None:
        """Close every connection (1001), stop the Kafka clients; bounded in time."""
        server, self._server = self._server, None
        if server is not None:
            server.close(close_connections=True)
            try:
                await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)
            except TimeoutError:
                # Clients that stopped reading cannot complete a closing handshake.
                for session in list(self._sessions):
                    session.ws.transport.abort()
                for task in list(getattr(server, "handler_tasks", ())):
                    task.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)
        await self._stop_clients()

    async def _stop_clients(self) -> None:
        abandoned, self._abandoned = self._abandoned, set()
        for task in abandoned:
            task.cancel()
        if abandoned:
            await asyncio.wait(abandoned, timeout=STOP_TIMEOUT)
        await self.hub.stop()
        await self.batches.stop()
        producer, self._producer = self._producer, None
        self.commands.producer = None
        if producer is not None:
            await stop_quietly(producer)

    def healthy(self) -> bool:
        """For a separate /healthz, cheap (no request): listening, the hub reads the run
        events and the producer is up. ``GET /healthz`` here also asks Kafka and PostgreSQL."""
        return (
            self._server is not None
            and self.hub.running
            and self.hub.healthy
            and self._producer is not None
        )

    def consumers(self) -> list[tuple[str, Any]]:
        """The hub's consumer (no group: it reads every partition), for the consumer lag."""
        return [(f"{self.topics.prefix}.gateway-hub", self.hub._consumer)]

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- HTTP --------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        target = split_target(request.path)
        try:
            answer = await self._route(request, target)
        except Exception:
            # Never the full target: its query may hold a token.
            log.exception("%s %s failed", request.method, target.path)
            answer = error_response(500, "internal error; see the gateway's log")
        if answer is not None:
            HTTP_REQUESTS.labels(str(answer.status_code)).inc()
            log.debug("%s %s -> %d", request.method, target.path, answer.status_code)
        return answer

    async def _route(self, request: Request, target: Target) -> Response | None:
        """Route a request whose head the gatekeeper admitted (Host, Origin, token, body)."""
        path, method = target.path, request.method
        if ws_route(path) is not None:
            if method != "GET":
                return error_response(405, "websockets use GET", {"Allow": "GET"})
            return None  # go on with the websocket handshake
        if method == "POST" and path == "/api/experiments":
            started = await self.commands.start_experiment(request)
            self.feeds.recent.note_started(started.status_code, started.body)  # its feed: at once
            return started
        if self.batches.handles(path):
            answer = await self.batches.write(request, path)
            if answer is not None:
                return answer
        cancelled = cancel_route(path)
        if cancelled is not None:
            if method != "POST":
                return error_response(405, f"{method} is not allowed here", {"Allow": "POST"})
            return await self.commands.cancel(request, cancelled)
        if method != "GET":
            known = path in ("/", "/healthz", "/metrics") or path.startswith(("/static/", "/api/"))
            if known:
                allow = "GET, POST" if path == "/api/experiments" else "GET"
                return error_response(405, f"{method} is not allowed here", {"Allow": allow})
            return error_response(404, "not found")
        if path == "/":
            return await self._static("index.html")
        if path.startswith("/static/"):
            return await self._static(path[len("/static/") :])
        if path == "/healthz":
            return await self._health()
        if path == "/metrics":
            return response(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        if path.startswith("/api/"):
            return await self._api(target)
        return error_response(404, "not found")

    async def _database(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Run ``work`` on the pool within ``gateway_database_timeout``.

        A frozen PostgreSQL must not hang the request: past the deadline the work is
        cancelled but not awaited (asyncpg may wait for the server to confirm the cancel),
        and the caller gets :class:`DatabaseTimeout` at once.
        """
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self.settings.gateway_database_timeout)
        if task in done:
            return task.result()
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)
        raise DatabaseTimeout

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned query's error is not news

    async def _api(self, target: Target) -> Response:
        path, params = target.path, target.params
        try:
            if path == "/api/experiments":
                found = await self._database(api.list_experiments(self.pool, params))
                return json_response(200, found)
            prefix = "/api/experiments/"
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                run_id = unquote(path[len(prefix) :])
                found = None
                if run_id:
                    found = await self._database(api.get_experiment(self.pool, run_id))
                if found is None:
                    return error_response(404, f"unknown experiment {run_id!r}")
                return json_response(200, found)
            if self.batches.handles(path):
                return await self.batches.read(path, params)
            prefix = "/api/views/"
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                name = path[len(prefix) :]
                rows = await self._database(api.read_view(self.pool, name, params))
                if rows is None:
                    known = ", ".join(sorted(api.VIEWS))
                    return error_response(404, f"unknown view {name!r}; views: {known}")
                return json_response(200, rows)
        except api.InvalidRequest as problems:
            return json_response(400, problems.document())
        except _DATABASE_DOWN as exc:
            log.warning("PostgreSQL is unavailable for %s: %r", path, exc)
            return error_response(503, DATABASE_UNAVAILABLE)
        return error_response(404, "not found")

    async def _static(self, relative: str) -> Response:
        path = static_path(self.static_dir, relative)
        if path is None:
            return error_response(404, "not found")
        body = await asyncio.to_thread(path.read_bytes)
        return response(200, body, content_type(path), cache="no-cache")

    async def _health(self) -> Response:
        return await health_response(
            self.hub, self._producer, lambda: self._database(self.pool.fetchval("SELECT 1"))
        )

    # -- websockets --------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        target = split_target(ws.request.path)
        route = ws_route(target.path)
        assert route is not None  # process_request let only websocket paths through
        session = Session(ws, self.settings.gateway_client_queue_size)
        kind, run_id = route
        feed: Coroutine[Any, Any, None]
        if kind == "runs":
            name, feed = "runs", self.feeds.all_runs(session)
        else:
            try:
                if kind == "run" and not valid_run_id(run_id):
                    raise QueryError(f"{run_id!r} is not a run id")
                query = parse_run_query(target.params)
                if kind == "batch":
                    name, feed = "batch", self.batches.feed(session, run_id, query)
            except QueryError as exc:
                await session.finish(CLOSE_BAD_QUERY, "bad query", error_frame(str(exc)))
                return
            if kind == "run" and query.replay is None:
                name, feed = "run", self.feeds.run(session, run_id, query.from_seq)
            elif kind == "run" and query.replay is not None:
                name = "replay"
                feed = self.feeds.replay(session, run_id, query.from_seq, query.replay)
        CLIENTS.labels(name).inc()
        self._sessions.add(session)
        session.feed_task = asyncio.create_task(self._guard(session, feed))
        try:
            async for _ in ws:
                pass  # clients have nothing to say; reading notices the close at once
        except ConnectionClosed:
            pass
        finally:
            task = session.feed_task
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if session.drop_task is not None:
                await asyncio.gather(session.drop_task, return_exceptions=True)
            self._sessions.discard(session)
            CLIENTS.labels(name).dec()

    async def _guard(self, session: Session, feed: Coroutine[Any, Any, None]) -> None:
        """Run a feed; whatever goes wrong, the client gets an error frame and a close."""
        started = time.monotonic()
        try:
            await feed
        except ConnectionClosed:
            pass
        except GapError as exc:
            log.error("%s", exc)
            await session.finish(CLOSE_INTERNAL, "archive gap", error_frame(str(exc)))
        except CONNECTION_ERRORS as exc:
            log.warning("a feed lost PostgreSQL: %r", exc)
            await session.finish(
                CLOSE_INTERNAL, "database unavailable", error_frame("the archive is unavailable")
            )
        except Exception:
            log.exception("a websocket feed failed after %.1f s", time.monotonic() - started)
            await session.finish(CLOSE_INTERNAL, "internal error", error_frame("internal error"))
