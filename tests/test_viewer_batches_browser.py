"""The viewer's Batches page and the experiment list's batch filter in a real headless
Chromium, against the real stack in-process: the session's embedded broker, a worker (whose
batch scheduler runs a real batch of built-in agents), a projector into a fresh PostgreSQL
database, and the gateway serving the viewer, the batch feed and the comparison report.
Every wait polls the page's DOM with a generous deadline; nothing sleeps to synchronise."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from oriole.batch_events import BatchRequest
from oriole.kafka.codec import encode
from projections.store import store_batch
from tests.batch_support import LogBuilder
from tests.chromium_support import Chromium, artifact_dir, chromium, needs_chromium
from tests.gateway_support import archive_events, recorded_run
from tests.kafka_support import (
    EVENT_TIMEOUT,
    Stack,
    make_stack,
    publish,
    running_projector,
    running_worker,
)
from tests.viewer_browser_support import by_testid, database, js, running_gateway

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

#: A whole batch on a loaded 2-core machine: generous.
BATCH_TIMEOUT = 600.0

BATCH_ID = "bv-live"
#: 2 agents x 1 maze x 2 start tiles x 3 repetitions, one run at a time.
PLANNED = 12


def live_spec() -> dict[str, Any]:
    """Frontier finds the goal fast; random wanders a big maze for its whole footstep budget,
    so the batch stays live for a while, one run at a time."""
    return {
        "batch_id": BATCH_ID,
        "name": "frontier vs random <i>live</i>",
        "labels": {"study": "viewer"},
        "agents": ["frontier", "random"],
        "mazes": [{"generator": "backtracker", "width": 21, "height": 21, "seeds": [7]}],
        "starts": {"random": 2, "seed": 3},
        "repetitions": 3,
        "limits": {"max_footsteps": 100, "max_actions": 200},
        "caps": {"max_in_flight": 1},
    }


async def request_batch(stack: Stack, spec: dict[str, Any]) -> None:
    message = BatchRequest(batch_id=spec["batch_id"], spec=spec, requested_by="viewer-test")
    out = encode(stack.topics.batches_commands, message, message.batch_id)
    await publish(stack.bootstrap, out.topic, out.value, out.key)


TOTAL_RUNS = f"+({by_testid('arm-total-runs')} || {{textContent: 'NaN'}}).textContent"


async def total_runs(browser: Chromium) -> int:
    return int(await browser.evaluate(TOTAL_RUNS))


def arm_rows() -> str:
    """The arm table's rows as [arm, runs] pairs (the names exactly as the page shows them)."""
    return (
        f"[...{by_testid('arm-table')}.tBodies[0].rows].map(r => "
        "[r.dataset.arm, r.querySelector('th').textContent, +r.cells[1].textContent])"
    )


def no_exceptions(browser: Chromium) -> None:
    assert not [line for line in browser.console if line.startswith("exception")], browser.console


@needs_chromium
async def test_the_batches_page_follows_a_live_batch_and_opens_an_arms_runs(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        database(pg_dsn) as pool,
        running_worker(stack),
        running_projector(stack, pool),
        running_gateway(stack, pool) as gateway,
        chromium(tmp_path) as browser,
    ):
        await browser.navigate(f"{gateway.url}/#batches")
        await browser.wait_for(
            f"!{by_testid('batches-page')}.hidden && "
            f"{by_testid('tab-batches')}.getAttribute('aria-current') === 'page'",
            "the Batches page",
        )
        await request_batch(stack, live_spec())

        # The batch appears in the list (re-read every few seconds); open it with a click.
        row = f"{by_testid('batch-list')}.querySelector('tr[data-batch-id={js(BATCH_ID)}]')"
        await browser.wait_for(f"!!{row}", "the batch in the list")
        name = await browser.evaluate(f"{row}.querySelector('a').textContent")
        assert name == live_spec()["name"]  # as text: no <i> element made of it
        assert await browser.evaluate(f"{row}.querySelector('i')") is None
        await browser.evaluate(f"{row}.querySelector('a').click()")
        await browser.wait_for(f"location.hash === {js('#batch=' + BATCH_ID)}", "the batch's URL")
        await browser.wait_for(
            f"{by_testid('batch-progress')}.textContent.includes('/ {PLANNED} finished')",
            "the planned runs from the batch feed",
        )

        # The arm table grows while the batch runs: a first total below the plan, then more.
        await browser.wait_for(
            f"(() => {{ const n = {TOTAL_RUNS}; return n > 0 && n < {PLANNED} && "
            f"{by_testid('batch-status')}.textContent === 'running'; }})()",
            "a first report with some of the runs while the batch runs",
            timeout=BATCH_TIMEOUT,
        )
        first = await total_runs(browser)
        await browser.screenshot(tmp_path / "batch-live.png", artifact_dir() / "batch-live.png")
        await browser.wait_for(
            f"{TOTAL_RUNS} > {first}", "the arm table to update live", timeout=BATCH_TIMEOUT
        )
        await browser.wait_for(
            f"{TOTAL_RUNS} === {PLANNED}",
            "every planned run in the arm table",
            timeout=BATCH_TIMEOUT,
        )
        await browser.wait_for(
            f"{by_testid('batch-status')}.textContent === 'finished (completed)' && "
            f"{by_testid('batch-feed-status')}.dataset.state === 'finished'",
            "the batch to finish",
            timeout=BATCH_TIMEOUT,
        )
        await browser.wait_for(
            f"{row}.cells[1].textContent === 'finished (completed)'", "the list to show the end"
        )
        progress = await browser.text("batch-progress")
        assert progress.startswith(f"{PLANNED} / {PLANNED} finished"), progress

        # The table is the report: every arm with its runs.
        async with httpx.AsyncClient(base_url=gateway.url, timeout=EVENT_TIMEOUT) as client:
            answer = await client.get(f"/api/batches/{BATCH_ID}/report")
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["runs"] == PLANNED
        arms = {arm["arm"]: arm for arm in report["arms"]}
        assert len(arms) == 2
        shown = await browser.evaluate(arm_rows())
        assert {arm: (text, runs) for arm, text, runs in shown} == {
            name: (name, arm["runs"]) for name, arm in arms.items()
        }
        assert sum(arm["runs"] for arm in arms.values()) == PLANNED
        pairs = await browser.evaluate(
            f"[...{by_testid('comparison-table')}.tBodies[0].rows].map(r => "
            "[r.cells[0].textContent, r.cells[1].textContent, r.cells[5].textContent])"
        )
        assert len(report["comparisons"]) == 1
        assert pairs == [[c["a"], c["b"], c["success"]["test"]] for c in report["comparisons"]]

        # Clicking an arm lists its runs; a run opens in the run viewer, the list on the batch.
        frontier = next(name for name in arms if "frontier" in name)
        arm_button = (
            f"[...{by_testid('arm-table')}.tBodies[0].rows]"
            f".find(r => r.dataset.arm === {js(frontier)}).querySelector('button')"
        )
        await browser.evaluate(f"{arm_button}.click()")
        await browser.wait_for(f"!{by_testid('arm-runs')}.hidden", "the arm's runs")
        listed = await browser.evaluate(
            f"[...{by_testid('arm-runs-list')}.children].map(li => li.dataset.runId)"
        )
        assert listed == arms[frontier]["run_ids"]
        assert len(listed) == arms[frontier]["runs"] == PLANNED // 2
        await browser.screenshot(tmp_path / "batch-arm.png", artifact_dir() / "batch-arm.png")
        await browser.evaluate(f"{by_testid('arm-runs-list')}.querySelector('a').click()")
        await browser.wait_for(
            f"decodeURIComponent(location.hash) === {js('#run=' + listed[0])} && "
            "!document.getElementById("
            "'runs-page').hidden && document.getElementById('batches-page').hidden",
            "the run viewer",
        )
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'finished'", "the run to load"
        )
        assert await browser.evaluate("document.getElementById('run-id').textContent") == listed[0]
        assert await browser.evaluate(f"{by_testid('list-batch-filter')}.value") == BATCH_ID
        items = f"[...{by_testid('experiment-list')}.children]"
        await browser.wait_for(f"{items}.length === {PLANNED}", "the batch's runs in the list")
        run_ids = await browser.evaluate(f"{items}.map(li => li.dataset.runId)")
        assert all(run_id.startswith(f"{BATCH_ID}:") for run_id in run_ids)
        await browser.screenshot(tmp_path / "batch-run.png", artifact_dir() / "batch-run.png")
        no_exceptions(browser)


XSS_LABEL = '<img src=x onerror="window.__pwned=1">'


@needs_chromium
async def test_the_list_shows_maze_start_time_labels_and_filters_by_batch(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    labelled = {
        "lb-1:c0:r1": {"batch_id": "lb-1", "cell": "c0", "note": XSS_LABEL},
        "lb-1:c1:r1": {"batch_id": "lb-1", "cell": "c1"},
        "lb-2:c0:r1": {"batch_id": "lb-2", "cell": "c0"},
        "solo": {},
    }
    runs = [
        await recorded_run(run_id, seed=index + 1, hours=index, size=15, labels=labels)
        for index, (run_id, labels) in enumerate(labelled.items())
    ]
    batch = LogBuilder("lb-1").started(name="<b>bold</b> batch")
    async with (
        database(pg_dsn) as pool,
        running_gateway(stack, pool) as gateway,
        chromium(tmp_path) as browser,
    ):
        await archive_events(pool, [event for run in runs for event in run])
        async with pool.acquire() as conn:
            await store_batch(conn, [], batch.events)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=EVENT_TIMEOUT) as client:
            experiments = (await client.get("/api/experiments")).json()["experiments"]
        by_id = {e["run_id"]: e for e in experiments}
        assert set(by_id) == set(labelled)

        await browser.navigate(f"{gateway.url}/")
        items = f"[...{by_testid('experiment-list')}.children].filter(li => !li.hidden)"
        shown = f"{items}.map(li => li.dataset.runId)"
        await browser.wait_for(f"{items}.length === 4", "every run in the list")
        rows = await browser.evaluate(
            f"{items}.map(li => [li.dataset.runId, li.querySelector('.exp-maze').textContent, "
            "li.querySelector('.exp-time').textContent, "
            "[...li.querySelectorAll('.exp-labels .label-chip')].map(c => c.textContent)])"
        )
        assert [row[0] for row in rows] == ["solo", "lb-2:c0:r1", "lb-1:c1:r1", "lb-1:c0:r1"]
        for run_id, maze, started, chips in rows:
            assert maze == by_id[run_id]["maze_name"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", started), started
            assert chips == [f"{k}={v}" for k, v in sorted(labelled[run_id].items())]
        # Labels are user input: shown as text, never run as HTML.
        assert (
            await browser.evaluate(f"{by_testid('experiment-list')}.querySelector('img')") is None
        )
        assert await browser.evaluate("window.__pwned") is None

        async def filter_batch(value: str) -> None:
            await browser.evaluate(
                f"(() => {{ const f = {by_testid('list-batch-filter')}; f.value = {js(value)}; "
                "f.dispatchEvent(new Event('change')); })()"
            )

        await filter_batch("lb-1")
        await browser.wait_for(
            f"{shown}.join(' ') === 'lb-1:c1:r1 lb-1:c0:r1'",
            "only batch lb-1's runs",
        )
        await filter_batch("lb-2")
        await browser.wait_for(f"{shown}.join(' ') === 'lb-2:c0:r1'", "only batch lb-2's runs")
        await filter_batch("nothing-here")
        await browser.wait_for(
            f"{items}.length === 0 && document.getElementById('list-message').textContent"
            ".includes('No experiments in batch nothing-here')",
            "an empty batch",
        )
        await filter_batch("")
        await browser.wait_for(f"{items}.length === 4", "every run again")

        # The Batches page by URL: the batch's name is text too.
        await browser.navigate(f"{gateway.url}/#batch=lb-1")
        await browser.wait_for(
            f"{by_testid('batch-title')}.textContent === {js('<b>bold</b> batch')}",
            "the batch's name as its title",
        )
        row = f"{by_testid('batch-list')}.querySelector('tr[data-batch-id=\"lb-1\"]')"
        await browser.wait_for(f"!!{row} && {row}.classList.contains('selected')", "the row")
        assert await browser.evaluate(f"{by_testid('batches-page')}.querySelector('b')") is None
        assert await browser.evaluate("document.getElementById('runs-page').hidden") is True
        await browser.screenshot(tmp_path / "batch-page.png", artifact_dir() / "batch-page.png")
        no_exceptions(browser)
