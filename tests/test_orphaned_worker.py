"""A worker whose broker is gone backs off quietly and obeys SIGTERM (issue 11, defect 8).

After a kill -9 of `oriole up`, the orphaned standalone worker logged about 190 ERROR lines a
second and ignored SIGTERM for 50 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oriole.kafka import EmbeddedBroker

pytestmark = pytest.mark.slow

#: Generous: the machine running the tests may be a loaded 2-core box.
READY_TIMEOUT = 120.0
#: How long the worker is watched with its broker gone (a measurement window, not a wait
#: for an event).
OUTAGE_SECONDS = 8.0


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.mark.asyncio
async def test_an_orphaned_worker_logs_quietly_and_stops_on_sigterm(tmp_path: Path) -> None:
    broker = await EmbeddedBroker(log_dir=tmp_path / "broker").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env |= {
        "ORIOLE_HOME": str(tmp_path / "home"),
        "ORIOLE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "ORIOLE_KAFKA_BROKER_KIND": "tansu",
        "ORIOLE_LOG_FORMAT": "console",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "oriole", "worker"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not any("owns command partitions" in line for line in _lines(log)):
            assert worker.poll() is None, "\n".join(_lines(log)[-30:])
            assert time.monotonic() < deadline, "worker never became ready"
            await asyncio.sleep(0.1)
        await broker.stop()
        before = len(_lines(log))
        await asyncio.sleep(OUTAGE_SECONDS)
        during = _lines(log)[before:]
        assert worker.poll() is None, "the worker must wait for its broker, not exit"
        # Each kind of connection error is logged once per window, not hundreds of times.
        assert len(during) <= 40, "\n".join(during[-40:])
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 60)
        # Within the grace (15 s) and the clients' bounded stops, not 50 s.
        assert time.monotonic() - stopped_at < 30
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        await broker.stop()
