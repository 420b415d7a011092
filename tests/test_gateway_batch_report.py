"""``GET /api/batches/{id}/report``: the report `oriole report --json` prints, served by the
gateway — checked parameters, 404 for an unknown batch, and a fresh report once more runs
of the batch are projected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oriole.comparison.report import Selection, build_report
from projections.migrate import migrate
from projections.report_source import load_report_runs
from tests.gateway_support import database_pool, http_client, running_gateway
from tests.kafka_support import make_stack
from tests.report_support import archive_local_batch

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

TOKEN = "read-tok-91c2"


async def test_the_report_route(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, tokens={TOKEN: "read"}) as gateway,
    ):
        async with pool.acquire() as conn:
            await migrate(conn)
            await archive_local_batch(conn, "gr-1")
            runs = await load_report_runs(conn, batch_id="gr-1")
        expected = build_report(runs.records(), Selection(batch_id="gr-1", seed=4))
        async with http_client(gateway) as anonymous:
            assert (await anonymous.get("/api/batches/gr-1/report")).status_code == 401
        async with http_client(gateway, TOKEN) as reader:
            served = await reader.get("/api/batches/gr-1/report?seed=4")
            assert served.status_code == 200, served.text
            assert served.json() == expected
            again = await reader.get("/api/batches/gr-1/report?seed=4")
            assert again.json() == expected  # from the cache: the batch has not moved
            against = (await reader.get("/api/batches/gr-1/report?baseline=random")).json()
            assert [(c["a"], c["b"]) for c in against["comparisons"]] == [("frontier", "random")]
            unknown = await reader.get("/api/batches/gr-nope/report")
            assert unknown.status_code == 404 and "gr-nope" in unknown.text
            bad = await reader.get("/api/batches/gr-1/report?seed=-1&by=a&by=b")
            assert bad.status_code == 400
            fields = {problem["field"] for problem in bad.json()["problems"]}
            assert fields == {"seed", "by"}  # every problem at once
            no_factor = await reader.get("/api/batches/gr-1/report?by=colour")
            assert no_factor.status_code == 400 and "colour" in no_factor.text
            no_arm = await reader.get("/api/batches/gr-1/report?baseline=gpt-9")
            assert no_arm.status_code == 400 and "gpt-9" in no_arm.text
            # A run of the batch is projected as still running: the cached report is not
            # served for the new state.
            async with pool.acquire() as conn:
                await conn.execute(
                    "UPDATE experiments SET status = 'running' WHERE run_id = $1",
                    expected["run_rows"][0]["run_id"],
                )
            moved: dict[str, Any] = (await reader.get("/api/batches/gr-1/report?seed=4")).json()
            assert (moved["runs"], moved["running"]) == (23, 1)
