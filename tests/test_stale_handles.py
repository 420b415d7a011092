"""After kill -9 of `oriole up`: its stack file and its handle on the embedded PostgreSQL.

pgserver counts the processes using a server in a handle file and stops the server when the
last one releases it; a holder killed with -9 never releases, so without pruning the server
ran for ever. The holder here does what `oriole up` does: start the embedded server, write
the stack file, and wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from oriole.environment.stack_file import clean_stale_stack, read_stack, stack_path
from projections.database import HANDLE_FILE, EmbeddedPostgres

pytestmark = pytest.mark.slow

DEADLINE = 180.0

HOLDER = """
import os, sys
from pathlib import Path
from oriole.environment.stack_file import StackInfo, write_stack
from projections.database import EmbeddedPostgres

home = Path(sys.argv[1])
server = EmbeddedPostgres(home / "pgdata")
dsn = server.start()
info = StackInfo(os.getpid(), "127.0.0.1:1", "tansu", "oriole", "2026-01-01T00:00:00+00:00",
                 database_url=dsn)
write_stack(home, info)
sys.stdin.read()  # until the test closes stdin (or kills us)
server.stop()
"""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def postmaster_running(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def handles(data_dir: Path) -> list[int]:
    return list(json.loads((data_dir / HANDLE_FILE).read_text() or "[]"))


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process holding the embedded server like `oriole up`, once it is up; reaped after."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)], env=env, stdin=subprocess.PIPE
    )
    try:

        def up() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the holder exited early ({process.returncode})")
            return stack_path(home).exists()

        wait_for(up, "the holder to start the embedded PostgreSQL")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def can_query(dsn: str) -> bool:
    async def query() -> int:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    return asyncio.run(query()) == 1


def test_handles_of_a_killed_holder_are_pruned_and_release_stops_the_server(
    tmp_path: Path, holder: subprocess.Popen[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    data = home / "pgdata"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert handles(data) == [holder.pid], "the killed holder's handle is left behind"
    assert postmaster_running(data), "and keeps the server running"

    with caplog.at_level(logging.WARNING):
        cleaned = clean_stale_stack(home)
    assert cleaned is not None and str(holder.pid) in cleaned
    assert not stack_path(home).exists()
    assert read_stack(home) is None
    assert any(f"process {holder.pid}, which is not running" in r.message for r in caplog.records)

    ours = EmbeddedPostgres(data)
    dsn = ours.start()
    try:
        assert ours.stale_handles == [holder.pid]
        assert handles(data) == [os.getpid()]
        assert can_query(dsn)
    finally:
        ours.stop()
    wait_for(lambda: not postmaster_running(data), "the server to stop with its last holder")


def test_a_live_holder_keeps_its_handle_and_the_server(
    tmp_path: Path, holder: subprocess.Popen[bytes]
) -> None:
    home = tmp_path / "home"
    data = home / "pgdata"
    assert clean_stale_stack(home) is None, "a live `oriole up`'s stack file is not stale"
    assert stack_path(home).exists()
    ours = EmbeddedPostgres(data)
    ours.start()
    try:
        assert ours.stale_handles == []
        assert sorted(handles(data)) == sorted([holder.pid, os.getpid()])
    finally:
        ours.stop()
    assert postmaster_running(data), "the holder still uses it"
    assert holder.stdin is not None
    holder.stdin.close()  # the holder releases its handle and exits
    assert holder.wait(timeout=DEADLINE) == 0
    wait_for(lambda: not postmaster_running(data), "the server to stop with its last holder")
