"""Processes a fault test can hurt: a private PostgreSQL cluster and Oriole services.

The PostgreSQL cluster is a throw-away one in a temp dir, made with Debian's own binaries
(``/usr/lib/postgresql/*/bin``) on a random loopback port, so the suite can stop, crash and
freeze it without touching any server other people use. Oriole services are plain
``python -m oriole <command>`` subprocesses configured only through ``ORIOLE_*`` variables,
exactly as a deployment runs them. Every process started here is reaped by ``close``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # pgserver's dependency

from oriole.kafka.embedded import free_port

#: Generous: a loaded 2-core machine may take many seconds to start PostgreSQL or Python.
PG_START_TIMEOUT = 120
STOP_TIMEOUT = 30.0


def postgres_bin_dir() -> Path | None:
    """Newest Debian PostgreSQL binary directory with initdb and pg_ctl, if installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0),
    )
    return Path(found[-1]).parent if found else None


def private_postgres_problem() -> str | None:
    """Why :class:`PrivatePostgres` cannot run here, or None if it can."""
    if postgres_bin_dir() is None:
        return "needs PostgreSQL binaries in /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a `postgres` system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root needs runuser (util-linux)"
    return None


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the server running on ``data_dir``, from its pid file; None if none runs."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        return pid if psutil.pid_exists(pid) else None
    except (OSError, ValueError, IndexError):
        return None


def kill_postmaster(data_dir: Path) -> None:
    """Kill what runs on ``data_dir`` (a server of the suite's own temp dir, never another)."""
    pid = postmaster_pid(data_dir)
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


class PrivatePostgres:
    """A PostgreSQL cluster of our own: initdb in a temp dir, trust auth, a random port.

    As root the server runs as the ``postgres`` system user (PostgreSQL refuses root).
    ``settings`` are extra ``postgresql.conf`` lines written after initdb; ``tls`` is a
    (certificate, key) pair copied into the data dir, owned by the server's user (the key
    with mode 0600, as PostgreSQL demands), and turned on with ``ssl = on``. Without
    either the cluster is exactly the plain one. Trust auth's ``host`` lines accept both
    encrypted and unencrypted connections.
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise RuntimeError("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
        self.bin_dir = found
        self.settings = dict(settings or {})
        self.tls = tls
        self.root = Path(tempfile.mkdtemp(prefix="oriole-faults-pg-"))
        self.root.chmod(0o755)  # the postgres user must reach its data dir
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.frozen = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self._as_owner([str(self.bin_dir / args[0]), *args[1:]]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PG_START_TIMEOUT + 30,
            check=check,
        )

    def init(self) -> None:
        self.data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._configure()
        self.start()

    def _install(self, source: Path, name: str, mode: int) -> Path:
        """``source`` copied into the data dir, owned by the server's user, with ``mode``."""
        target = self.data / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # never wider
        with os.fdopen(fd, "wb") as out:
            out.write(source.read_bytes())
        if os.geteuid() == 0:
            shutil.chown(target, "postgres", "postgres")
        return target

    def _configure(self) -> None:
        """The extra settings and TLS files; nothing at all when neither was asked for."""
        settings = dict(self.settings)
        if self.tls is not None:
            cert, key = self.tls
            settings["ssl"] = "on"
            settings["ssl_cert_file"] = str(self._install(cert, "server.crt", 0o644))
            settings["ssl_key_file"] = str(self._install(key, "server.key", 0o600))
        if not settings:
            return
        quoted = {key: "'" + value.replace("'", "''") + "'" for key, value in settings.items()}
        lines = "".join(f"{key} = {value}\n" for key, value in quoted.items())
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# PrivatePostgres\n" + lines)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off -c max_connections=200"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(PG_START_TIMEOUT), "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` is a crash as far as clients can tell."""
        self.thaw()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def _processes(self) -> list[psutil.Process]:
        """The postmaster and every backend of *this* cluster, found by its pid file."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            master = psutil.Process(pid)
            return [master, *master.children(recursive=True)]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    def freeze(self) -> None:
        """SIGSTOP every process of the cluster: the server hangs, connections stay open."""
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if not self.frozen:
            return
        for process in reversed(self._processes()):
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGCONT)
        self.frozen = False

    def close(self) -> None:
        self.stop("immediate")
        for process in self._processes():  # pg_ctl failed: make sure nothing is left
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Crash:
    """A service that exited by itself: its exit code and the last error in its log."""

    service: str
    returncode: int
    at: float
    error: str


@dataclass
class Service:
    """One Oriole service process; restarted after kills and crashes, like a supervisor."""

    name: str
    command: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    restarts: int = 0
    crashes: list[Crash] = field(default_factory=list)
    _log_offset: int = 0

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "oriole", self.command],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.env["ORIOLE_HOME"],
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL and reap, so the exit is known to be ours and never counted as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def check(self) -> Crash | None:
        """A crash if the process exited on its own with a non-zero code (then restarted)."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None or code == 0:
            return None
        crash = Crash(self.name, code, time.monotonic(), self._last_error())
        self.crashes.append(crash)
        self.restarts += 1
        self.start()
        return crash

    def _last_error(self) -> str:
        """The last exception line the process logged (the evidence for a report)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [line.strip(" |+-") for line in text.splitlines() if line.strip(" |+-")]
        errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
        # An exception group's own line says less than the exception inside it.
        inner = [line for line in errors if not line.startswith(("ExceptionGroup", "BaseExc"))]
        return (inner or errors or lines or [""])[-1][:500]

    def stop(self) -> None:
        """SIGTERM (a clean stop), then SIGKILL if it does not stop; always reaped."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def service_env(
    home: Path, bootstrap: str, prefix: str, database_url: str, **extra: str
) -> dict[str, str]:
    """The environment of an Oriole service: only what the suite chose, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env |= {
        "ORIOLE_HOME": str(home),
        "ORIOLE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ORIOLE_KAFKA_BROKER_KIND": "tansu",
        "ORIOLE_KAFKA_TOPIC_PREFIX": prefix,
        "ORIOLE_DATABASE_URL": database_url,
        "ORIOLE_LOG_FORMAT": "console",
        "ORIOLE_GATEWAY_HOST": "127.0.0.1",
    }
    env |= extra
    return env
