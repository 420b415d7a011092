"""The browser viewer in a real headless Chromium with untrusted or missing input: HTML in a
run's reasoning and comment is shown as text, and a missing token is explained. Against
the real stack in-process: the session's embedded broker, a worker, a projector into a
fresh PostgreSQL database, and the gateway serving the viewer. Every wait polls the page's
DOM with a generous deadline; nothing sleeps to synchronise."""

from __future__ import annotations

from pathlib import Path

import pytest

from oriole import generators
from oriole.events import ActionCompleted, RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData
from oriole.intents import ModelCall
from oriole.local_run import LocalRun
from projections.store import store_batch
from tests.chromium_support import artifact_dir, chromium, needs_chromium
from tests.kafka_support import make_stack
from tests.viewer_browser_support import by_testid, database, js, running_gateway, scrub_to

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


XSS_REASONING = "<script>window.__pwned=1</script><b>bold</b>"
XSS_COMMENT = '<img src=x onerror="window.__pwned=2">'


def crafted_run(run_id: str) -> list[RunEvent]:
    """An archived run whose reasoning, messages and comment are HTML (script included)."""
    maze = generators.generate("backtracker", 15, 15, seed=3, name="viewer-xss")
    request = ExperimentStart(
        run_id=run_id,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="random", seed=1),
        comment=XSS_COMMENT,
    )
    run = LocalRun(request, maze)
    for turn, action in enumerate(("move_north", "move_east", "move_south", "move_west") * 2):
        call = ModelCall(
            call_id=f"call-{turn}",
            provider="ollama",
            model="qwen2.5:7b",
            input_tokens=800 + turn,
            output_tokens=60,
            duration_ms=2310.0,
            prompt_eval_ms=410.0,
            eval_ms=1850.0,
            tokens_per_second=34.5,
        )
        run.act(
            action,
            turn=turn + 1,
            model_call=call,
            reasoning=XSS_REASONING,
            assistant_message=XSS_REASONING,
        )
    run.cancel("enough")
    return run.events


@needs_chromium
async def test_reasoning_is_shown_as_text_never_run_as_html(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-viewer-xss"
    events = crafted_run(run_id)
    token = "viewer-test-token"
    async with database(pg_dsn) as pool:
        async with pool.acquire() as conn:
            await store_batch(conn, events)
        async with (
            running_gateway(stack, pool, tokens={token: "read"}) as gateway,
            chromium(tmp_path) as browser,
        ):
            await browser.command(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 2, "mobile": False},
            )
            # The token travels from the page URL to the API (header) and websockets (query).
            await browser.navigate(f"{gateway.url}/?token={token}#run={run_id}")
            await browser.wait_for(
                f"{by_testid('connection-status')}.dataset.state === 'finished'",
                "the archived run to load",
            )
            steps = sum(isinstance(e, ActionCompleted) for e in events)
            assert await browser.text("step-counter") == f"Step {steps} / {steps}"
            assert await browser.text("reasoning") == XSS_REASONING
            assert await browser.text("assistant-message") == XSS_REASONING
            assert await browser.evaluate(f"{by_testid('reasoning')}.children.length") == 0
            assert await browser.evaluate("document.getElementById('run-comment').textContent") == (
                XSS_COMMENT
            )
            item = f"{by_testid('experiment-list')}.querySelector('li[data-run-id={js(run_id)}]')"
            await browser.wait_for(f"!!{item}", "the archived run in the list")
            assert await browser.evaluate(f"{item}.dataset.status") == "cancelled"
            # Scrub through every step: each one renders its reasoning as text, and the
            # usage and timings of its model call.
            for step in range(1, steps + 1):
                await scrub_to(browser, step)
                assert await browser.text("reasoning") == XSS_REASONING
                tokens = await browser.evaluate(
                    "document.getElementById('step-tokens').textContent"
                )
                assert tokens.startswith(f"{799 + step} in / 60 out"), tokens
            timings = await browser.evaluate("document.getElementById('step-timings').textContent")
            assert timings == "call 2.31 s · prompt 410 ms · generation 1.85 s · 34.5 tok/s"
            assert await browser.evaluate("typeof window.__pwned") == "undefined"
            assert await browser.evaluate("document.querySelectorAll('b, img').length") == 0
            # HiDPI: two device pixels per CSS pixel on the canvas.
            canvas = by_testid("maze-canvas")
            ratio = await browser.evaluate(
                f"{canvas}.width / {canvas}.getBoundingClientRect().width"
            )
            assert ratio == pytest.approx(2, rel=0.01)
            await browser.screenshot(tmp_path / "viewer-xss.png", artifact_dir() / "viewer-xss.png")
            assert not [line for line in browser.console if line.startswith("exception")], (
                browser.console
            )


@needs_chromium
async def test_viewer_without_token_says_so(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        database(pg_dsn) as pool,
        running_gateway(stack, pool, tokens={"secret": "read"}) as gateway,
        chromium(tmp_path) as browser,
    ):
        await browser.navigate(f"{gateway.url}/#run=run-anything")
        await browser.wait_for(
            "document.getElementById('list-message').textContent.includes('?token=')",
            "the list to ask for a token",
        )
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'error' && "
            f"{by_testid('connection-status')}.textContent.includes('token')",
            "the run feed to report the missing token",
        )
