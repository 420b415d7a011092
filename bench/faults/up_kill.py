"""kill -9 of a whole `oriole up`, then a restart in the same home: no start is lost.

Apart from the harness because `oriole up` is its own stack (embedded broker and
PostgreSQL), started the way a user starts it; only the archive tells what survived.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults.archive import ArchivedRun, archived_requests, archived_runs
from bench.faults.config import FaultConfig
from bench.faults.waiting import until
from bench.processes import PG_START_TIMEOUT, Service, kill_postmaster, postmaster_pid
from oriole import generators
from oriole.cli.follower import publish_start
from oriole.environment.stack_file import Connection, NoStackError, StackInfo, read_stack
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka.embedded import free_port

UP_PREFIX = "up-run-"


@dataclass
class UpStack:
    """`oriole up` as a user runs it: embedded broker and PostgreSQL, in its own home."""

    service: Service
    home: Path

    @classmethod
    def create(cls, scratch: Path) -> UpStack:
        home = scratch / "up-home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
        env |= {
            "ORIOLE_HOME": str(home),
            "ORIOLE_GATEWAY_PORT": str(free_port()),
            "ORIOLE_LOG_FORMAT": "console",
        }
        return cls(Service("up", "up", env, scratch / "up.log"), home)

    async def started(self, timeout: float) -> StackInfo | None:
        """The stack file once it names this process (broker, database and gateway up)."""

        def ours() -> StackInfo | None:
            try:
                info = read_stack(self.home, check_alive=False)
            except NoStackError:
                return None
            process = self.service.process
            return info if info and process and info.pid == process.pid else None

        if await until(lambda: ours() is not None, timeout) is None:
            return None
        return ours()

    def log_text(self) -> str:
        return self.service.log_path.read_text(errors="replace")


def up_requests(config: FaultConfig, prefix: str = UP_PREFIX) -> list[ExperimentStart]:
    return [
        ExperimentStart(
            run_id=f"{prefix}{i:02d}",
            maze=MazeData.from_maze(generators.generate("backtracker", 101, 101, seed=50 + i)),
            agent=AgentSpec(provider="builtin", model="frontier", seed=i),
            limits=RunLimits(max_footsteps=config.up_footsteps),
        )
        for i in range(config.up_runs)
    ]


async def up_kill(scratch: Path, config: FaultConfig) -> dict[str, Any]:
    """Starts acknowledged before and just before a kill -9 of `oriole up` all end after it
    restarts (same home), each once; the restart cleans the stale stack file and handle."""
    up = UpStack.create(scratch)
    requests = up_requests(config)
    early, late = requests[: len(requests) // 2], requests[len(requests) // 2 :]
    window = up_requests(config, prefix=f"{UP_PREFIX}window-")
    figures: dict[str, Any] = {
        "acknowledged_early": len(early),
        "acknowledged_late": len(late),
        "acknowledged_in_window": len(window),
    }
    up.service.start()
    try:
        info = await up.started(PG_START_TIMEOUT + 60)
        if info is None or info.database_url is None:
            return figures | {"error": "oriole up did not start", "log": up.log_text()[-2000:]}
        conn = Connection(info.kafka_bootstrap_servers, True, info.topic_prefix)
        first_dsn = info.database_url
        for request in early:
            await publish_start(conn, request)

        async def early_moving() -> bool:
            found = await archived_runs(first_dsn, UP_PREFIX) or {}
            return all(found.get(r.run_id, ArchivedRun(0, 0, 0, 0, 0)).rows > 50 for r in early)

        figures["early_runs_archived_s"] = await until(early_moving, config.recovery_timeout)
        for request in late:  # acknowledged and archived as requests just before the kill
            await publish_start(conn, request)

        async def late_requests_archived() -> bool:
            found = await archived_requests(first_dsn, UP_PREFIX)
            return found is not None and {r.run_id for r in late} <= found

        figures["late_requests_archived_s"] = await until(
            late_requests_archived, config.recovery_timeout
        )
        # Published right before the kill: inside the documented window (acknowledged by
        # the broker, not yet archived by the projector). Counted, not required to survive.
        for request in window:
            await publish_start(conn, request)
        up.service.kill9()
        killed = time.monotonic()
        up.service.start()
        info = await up.started(PG_START_TIMEOUT + 60)
        if info is None or info.database_url is None:
            return figures | {"error": "oriole up did not restart", "log": up.log_text()[-2000:]}
        figures["restart_s"] = round(time.monotonic() - killed, 2)
        dsn = info.database_url

        async def all_finished() -> bool:
            found = await archived_runs(dsn, UP_PREFIX) or {}
            return all(r.run_id in found and found[r.run_id].finished for r in requests)

        # Restored runs resume at once; a start that was lost never comes, so no long wait.
        figures["all_finished_s"] = await until(all_finished, config.recovery_timeout)
        archived = await archived_runs(dsn, UP_PREFIX) or {}
    finally:
        await asyncio.to_thread(up.service.stop)
        data = up.home / "pgdata"
        stopped = await until(lambda: postmaster_pid(data) is None, 60)
        kill_postmaster(data)  # in case it did not stop: never leave a server behind
    log = up.log_text()
    process = up.service.process
    figures |= {
        "lost": [r.run_id for r in requests if r.run_id not in archived],
        # Documented window (docs/archive.md): how many of the starts published right
        # before the kill survived anyway. Informational.
        "window_survived": sum(r.run_id in archived for r in window),
        "stuck": [
            r.run_id for r in requests if archived.get(r.run_id) and not archived[r.run_id].finished
        ],
        "duplicated": {r: p for r, a in archived.items() if (p := a.problems())},
        "stale_stack_file_cleaned": "stack.json: the stack file of process" in log,
        "stale_pg_handle_pruned": "dropped handles of processes that are gone" in log,
        "exit_code_on_sigterm": None if process is None else process.returncode,
        "pg_stopped_after_last_user": stopped is not None,
    }
    return figures


def up_failures(figures: dict[str, Any]) -> list[str]:
    if "error" in figures:
        return [f"up_kill: {figures['error']}"]
    failures = [
        f"up_kill {name}: {len(figures[name])}"
        for name in ("lost", "stuck", "duplicated")
        if figures[name]
    ]
    if figures.get("late_requests_archived_s") is None:
        failures.append("up_kill: the late start requests were never archived")
    if figures["exit_code_on_sigterm"] != 0:
        failures.append(f"up_kill crashed: exit code {figures['exit_code_on_sigterm']}")
    if not figures["pg_stopped_after_last_user"]:
        failures.append("up_kill: the embedded PostgreSQL kept running")
    return failures
