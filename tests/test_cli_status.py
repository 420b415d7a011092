"""`oriole status` against real processes: healthy with a worker and a projector running,
unhealthy (exit 1, the reason named) once the projector stops or the database is out of
reach."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from oriole.cli.status import _health_check
from tests.kafka_support import Stack
from tests.test_metrics_processes import (
    Process,
    _env,
    _free_port,
    _spawn,
    _stop,
    _until,
    processes,  # noqa: F401  (the fixture)
    stack,  # noqa: F401  (the fixture)
)

STATUS_TIMEOUT = 180.0


def _status(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "oriole", "status", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=STATUS_TIMEOUT,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _checks(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in document["checks"]}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_status_sees_a_stopped_projector_and_an_unreachable_database(
    tmp_path: Path,
    stack: Stack,  # noqa: F811
    pg_dsn: str,
    processes: list[Process],  # noqa: F811
) -> None:
    env = _env(stack, pg_dsn)
    prefix = stack.topics.prefix
    worker_port, projector_port = _free_port(), _free_port()
    worker = _spawn("worker", ["worker", "--metrics-port", str(worker_port)], env, tmp_path)
    projector = _spawn(
        "projector", ["projector", "--metrics-port", str(projector_port)], env, tmp_path
    )
    processes.extend([worker, projector])
    worker_url = f"http://127.0.0.1:{worker_port}"
    projector_url = f"http://127.0.0.1:{projector_port}"

    async def healthy() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(f"http://127.0.0.1:{worker_port}/healthz")
        return answer.status_code == 200

    await _until("a healthy worker", healthy, processes)

    asked = ["--process", worker_url, "--process", projector_url]

    async def status_says(wanted: int) -> dict[str, Any] | None:
        code, document = await asyncio.to_thread(_status, env, *asked)
        return document if code == wanted else None

    fine = await _until("a healthy status", lambda: status_says(0), processes)
    checks = _checks(fine)
    assert fine["healthy"] is True
    assert checks[f"group {prefix}.maze-processor"]["level"] == "ok"
    assert checks[f"group {prefix}.projector"]["data"]["members"] == 1
    assert checks["database"]["level"] == "ok"
    assert checks["in flight"]["data"] == {"runs": 0, "batches": 0}
    assert checks[f"process {projector_url}"]["detail"] == "projector: healthy"
    partitions = checks[f"partitions at {worker_url}"]["data"]
    assert partitions["maze-processor"] == [0, 1]  # the only worker owns both partitions

    _stop(projector)
    processes.remove(projector)
    broken = await _until("the stopped projector to show", lambda: status_says(1), processes)
    stopped = _checks(broken)[f"process {projector_url}"]
    assert broken["healthy"] is False
    assert stopped["level"] == "fail" and "no answer" in stopped["detail"]
    assert _checks(broken)[f"process {worker_url}"]["level"] == "ok"

    nowhere = env | {"ORIOLE_DATABASE_URL": f"postgresql://127.0.0.1:{_free_port()}/none"}
    code, document = await asyncio.to_thread(_status, nowhere, *asked)
    assert code == 1
    database = _checks(document)["database"]
    assert database["level"] == "fail" and "unreachable" in database["detail"]


def test_a_gateway_health_answer_is_named_and_its_services_listed() -> None:
    """The gateway's own /healthz (all of `oriole up`) names no process: it is the gateway,
    and its Kafka and PostgreSQL flags are the services."""
    ok = httpx.Response(200, json={"status": "ok", "kafka": True, "database": True})
    check = _health_check("http://gw", ok)
    assert (check.level, check.detail) == ("ok", "gateway: healthy")
    assert check.data == {"services": {"kafka": True, "database": True}}
    down = httpx.Response(503, json={"status": "unavailable", "kafka": True, "database": False})
    check = _health_check("http://gw", down)
    assert (check.level, check.detail) == ("fail", "gateway: unhealthy (database)")
    worker = httpx.Response(
        503, json={"process": "worker", "status": "unhealthy", "services": {"maze": False}}
    )
    assert _health_check("http://w", worker).detail == "worker: unhealthy (maze)"
    garbage = httpx.Response(502, text="<html>bad gateway</html>")
    assert _health_check("http://x", garbage).detail == "gateway: unhealthy (HTTP 502)"
