"""The fault suite from start to verdict: the order of the phases, and its entry points.

``main`` is what ``python -m bench faults`` calls; ``run_faults`` is what the test calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.faults.config import FaultConfig
from bench.faults.harness import Harness
from bench.faults.up_kill import up_failures, up_kill
from bench.faults.verdict import verdict
from bench.faults.waiting import guarded, until


async def scenario(h: Harness) -> float | None:
    """Faults and the flood while the runs play, then the end-of-suite checks."""
    config = h.config
    flood = asyncio.create_task(h.flood(), name="flood")
    await h.inject_faults()
    h.progress("faults done; waiting for the flood and the runs")
    await flood
    await until(lambda: not h.obs.active(h.acknowledged), config.deadline_seconds)
    h.progress("runs ended; killing every worker, then re-publishing every start")
    h.faults.append(await h.kill_all_workers())
    settle = await h.republish_duplicates()
    h.progress("waiting for the archive to hold every event of the log")
    await until(h.archive_matches_log, config.archive_timeout)
    return settle


async def run_faults(config: FaultConfig, keep_logs: Path | None = None) -> dict[str, Any]:
    """The whole suite; returns the JSON figures (``ok`` false on any failure). The services'
    logs are copied to ``keep_logs`` if given (the evidence behind a failure)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oriole-faults-") as scratch:
        h = Harness(config, Path(scratch))
        background: list[asyncio.Task[Any]] = []
        try:
            h.progress("starting the stack")
            await h.start()
            h.make_requests()
            background = [
                asyncio.create_task(h.obs.run(), name="observer"),
                asyncio.create_task(h.supervise(), name="supervisor"),
            ]
            settle = await guarded(scenario(h), background)
            figures = await verdict(h, time.monotonic() - started, settle)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await h.close()
        if config.up_runs:
            h.progress("kill -9 of a whole `oriole up`, then a restart")
            up = await up_kill(Path(scratch), config)
            figures["up_kill"] = up
            figures["failures"] += up_failures(up)
            figures["ok"] = not figures["failures"]
        figures["seconds"] = round(time.monotonic() - started, 1)
        if keep_logs is not None:
            shutil.copytree(Path(scratch) / "logs", keep_logs, dirs_exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy(Path(scratch) / "up.log", keep_logs)
        return figures


def main() -> dict[str, Any]:
    """Full size; ``BENCH_FAULTS_SIZE=ci`` for the CI size; ``BENCH_FAULTS_LOGS=DIR`` keeps
    the services' logs."""
    size = os.environ.get("BENCH_FAULTS_SIZE", "full")
    config = FaultConfig.ci() if size == "ci" else FaultConfig.full()
    logs = os.environ.get("BENCH_FAULTS_LOGS")
    return asyncio.run(run_faults(config, Path(logs) if logs else None))
