"""Finding the stack that `oriole up` started on this machine.

`oriole up` writes ``$ORIOLE_HOME/stack.json`` (bootstrap servers, broker kind, pid, ...) and
removes it when it stops; client commands read it so that `oriole run` works with no flags.
A file left by a process that no longer runs is reported as stale, never silently used.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from oriole.environment.settings import Settings
from oriole.errors import OrioleError

STACK_FILE = "stack.json"

log = logging.getLogger("oriole.environment.stack_file")


class NoStackError(OrioleError):
    """No broker configured and no running stack found."""


@dataclass(frozen=True, slots=True)
class StackInfo:
    pid: int
    kafka_bootstrap_servers: str
    broker_kind: str  # "tansu" or "kafka"
    topic_prefix: str
    started_at: str
    gateway_url: str | None = None
    database_url: str | None = None
    rdkafka_bootstrap_servers: str | None = None  # for kcat & other librdkafka clients


def stack_path(home: Path) -> Path:
    return home / STACK_FILE


def write_stack(home: Path, info: StackInfo) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = stack_path(home)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def remove_stack(home: Path, pid: int) -> None:
    """Remove the stack file if it is ours (another `oriole up` may have replaced it)."""
    current = read_stack(home, check_alive=False)
    if current is not None and current.pid == pid:
        stack_path(home).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_stack(home: Path, *, check_alive: bool = True) -> StackInfo | None:
    path = stack_path(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = StackInfo(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise NoStackError(f"{path} is not a valid stack file ({exc}); delete it") from exc
    if check_alive and not _alive(info.pid):
        raise NoStackError(
            f"{path} names process {info.pid}, which is not running (a stack that did not stop "
            "cleanly); start a new one with `oriole up` or delete the file"
        )
    return info


def clean_stale_stack(home: Path) -> str | None:
    """Remove a stack file that no running `oriole up` owns (one killed with -9 leaves it
    behind), logging what it named; returns that description, or None if nothing was stale.

    A file naming a live process is left alone: it may be another `oriole up`.
    """
    path = stack_path(home)
    try:
        info = read_stack(home, check_alive=False)
    except NoStackError as exc:
        what = f"an unreadable stack file ({exc.__cause__})"
    else:
        if info is None or _alive(info.pid):
            return None
        what = (
            f"the stack file of process {info.pid}, which is not running (started "
            f"{info.started_at}, Kafka {info.kafka_bootstrap_servers})"
        )
    path.unlink(missing_ok=True)
    log.warning("removed %s: %s", path, what)
    return what


@dataclass(frozen=True, slots=True)
class Connection:
    bootstrap_servers: str
    tansu: bool
    topic_prefix: str


def connection(settings: Settings) -> Connection:
    """The broker a client command should talk to: configured, or the local stack's."""
    if settings.kafka_bootstrap_servers:
        return Connection(
            settings.kafka_bootstrap_servers, settings.tansu_broker, settings.kafka_topic_prefix
        )
    info = read_stack(settings.home)
    if info is None:
        raise NoStackError(
            "no Oriole stack is running on this machine and ORIOLE_KAFKA_BOOTSTRAP_SERVERS is "
            "not set; start one with `oriole up` (in another terminal)"
        )
    return Connection(info.kafka_bootstrap_servers, info.broker_kind == "tansu", info.topic_prefix)
