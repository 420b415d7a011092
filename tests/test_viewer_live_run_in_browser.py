"""The browser viewer in a real headless Chromium following a live run, scrubbing it and
seeing it finish, against the real stack in-process: the session's embedded broker, a
worker, a projector into a fresh PostgreSQL database, and the gateway serving the viewer.
Every wait polls the page's DOM with a generous deadline; nothing sleeps to synchronise."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from oriole import generators
from oriole.events import ActionCompleted, ActionRequested, RunStarted
from oriole.intents import CancelRequest
from tests.chromium_support import Chromium, artifact_dir, chromium, needs_chromium
from tests.kafka_support import (
    TopicReader,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)
from tests.viewer_browser_support import by_testid, database, js, running_gateway, scrub_to

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def counter(browser: Chromium) -> tuple[int, int]:
    """(shown step, steps known) from the "Step i / n" counter."""
    text = await browser.text("step-counter")
    match = re.fullmatch(r"Step (\d+) / (\d+)", text)
    assert match, f"unexpected step counter {text!r}"
    return int(match.group(1)), int(match.group(2))


async def press(browser: Chromium, key: str, code: int) -> None:
    for kind in ("keyDown", "keyUp"):
        await browser.command(
            "Input.dispatchKeyEvent",
            {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code},
        )


def point_text(point: Any) -> str:
    return f"({point.x}, {point.y})"


def outcomes(records: list[Any], run_id: str) -> list[ActionCompleted]:
    return [e for e in run_events(records, run_id) if isinstance(e, ActionCompleted)]


def decisions(records: list[Any], run_id: str) -> list[tuple[ActionRequested, ActionCompleted]]:
    """Each action's decision (with the reasoning) and its outcome, in step order."""
    pairs: list[tuple[ActionRequested, ActionCompleted]] = []
    requested: ActionRequested | None = None
    for event in run_events(records, run_id):
        if isinstance(event, ActionRequested):
            requested = event
        elif isinstance(event, ActionCompleted):
            assert requested is not None
            pairs.append((requested, event))
    return pairs


@needs_chromium
async def test_live_run_followed_scrubbed_and_finished_in_the_browser(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-viewer-live"
    # A random walk in a big perfect maze stays far from the goal: the run stays live until
    # the test cancels it, however fast or slow the machine.
    maze = generators.generate("backtracker", 121, 121, seed=11, name="viewer-live")
    body = start_event(
        run_id,
        maze.to_dict(),
        agent={"provider": "builtin", "model": "random", "seed": 5},
        limits={"max_footsteps": 200_000, "max_actions": 1_000_000, "max_duration_seconds": 900},
    )
    shots = [tmp_path / "viewer-live.png", artifact_dir() / "viewer-live.png"]
    async with (
        database(pg_dsn) as pool,
        running_worker(stack),
        running_projector(stack, pool),
        running_gateway(stack, pool) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
        chromium(tmp_path) as browser,
    ):
        await browser.navigate(f"{gateway.url}/")
        # No run open: the status shows the experiment list's feed.
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'open'", "the /ws/runs feed"
        )
        await publish(kafka_broker, stack.topics.experiments_start, body, run_id.encode())

        # The new run appears in the list from the feed alone; open it with a click.
        item = f"{by_testid('experiment-list')}.querySelector('li[data-run-id={js(run_id)}]')"
        await browser.wait_for(f"!!{item}", "the run in the experiment list")
        await browser.evaluate(f"{item}.querySelector('button').click()")
        assert await browser.evaluate("location.hash") == f"#run={run_id}"

        # Follow live: the counter grows and the agent moves, with no user action.
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'live'", "the live run feed"
        )
        assert await browser.evaluate(f"{by_testid('follow-live')}.checked") is True
        await browser.wait_for(
            f"/^Step [1-9]\\d* \\/ /.test({by_testid('step-counter')}.textContent)", "a first step"
        )
        first_step, _ = await counter(browser)
        first_position = await browser.text("agent-position")
        await browser.wait_for(
            f"{by_testid('agent-position')}.textContent !== {js(first_position)}",
            "the agent to move",
        )
        await browser.wait_for(
            f"(() => {{ const m = /^Step (\\d+) \\/ (\\d+)$/.exec("
            f"{by_testid('step-counter')}.textContent); "
            f"return m && +m[1] === +m[2] && +m[1] >= {first_step + 20}; }})()",
            "the step counter to grow while following",
        )
        assert await browser.evaluate(f"{item}.dataset.status") == "running"
        await browser.screenshot(*shots)

        # Scrub back to the first step: following stops; the agent is where step 1 left it.
        await log.until(lambda records: len(decisions(records, run_id)) >= 2)
        events = run_events(log.records, run_id)
        started = events[0]
        assert isinstance(started, RunStarted)
        start = started.payload.spec.start
        assert start is not None
        (first_decision, first), (_, second) = decisions(log.records, run_id)[:2]
        await scrub_to(browser, 1)
        assert await browser.evaluate(f"{by_testid('follow-live')}.checked") is False
        assert await browser.text("agent-position") == point_text(first.payload.to)
        assert await browser.text("reasoning") == first_decision.payload.reasoning
        await scrub_to(browser, 0)
        assert await browser.text("agent-position") == point_text(start)

        # Keyboard and buttons: → , the forward button, the back button.
        await press(browser, "ArrowRight", 39)
        await browser.wait_for(
            f"{by_testid('step-counter')}.textContent.startsWith('Step 1 /')", "→ to step 1"
        )
        await browser.evaluate(f"{by_testid('step-forward')}.click()")
        await browser.wait_for(
            f"{by_testid('step-counter')}.textContent.startsWith('Step 2 /')", "forward to step 2"
        )
        assert await browser.text("agent-position") == point_text(second.payload.to)
        await browser.evaluate(f"{by_testid('step-back')}.click()")
        await browser.wait_for(
            f"{by_testid('step-counter')}.textContent.startsWith('Step 1 /')", "back to step 1"
        )
        # Not following: the run goes on (the total grows) but the shown step stays.
        _, known = await counter(browser)
        await browser.wait_for(
            f"+/\\/ (\\d+)$/.exec({by_testid('step-counter')}.textContent)[1] > {known}",
            "more steps to arrive while scrubbed back",
        )
        assert (await counter(browser))[0] == 1

        # Play from step 1 at maximum speed, then pause.
        await browser.evaluate("document.getElementById('speed').value = 'max'")
        await browser.evaluate(
            "document.getElementById('speed').dispatchEvent(new Event('change'))"
        )
        await browser.evaluate(f"{by_testid('play')}.click()")
        await browser.wait_for(
            f"+/^Step (\\d+)/.exec({by_testid('step-counter')}.textContent)[1] > 5", "playback"
        )
        await browser.evaluate(f"{by_testid('play')}.click()")
        assert (
            await browser.evaluate(f"{by_testid('play')}.getAttribute('aria-pressed')") == "false"
        )

        # End the run; the viewer sees the end, and with follow-live on shows the last step.
        cancel = CancelRequest(run_id=run_id, reason="viewer test done", requested_by="test")
        await publish(
            kafka_broker,
            stack.topics.runs_control,
            cancel.model_dump_json().encode(),
            run_id.encode(),
        )
        await log.until(finished([run_id]))
        total = len(outcomes(log.records, run_id))
        last = outcomes(log.records, run_id)[-1]
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'finished'", "the run to finish"
        )
        await browser.evaluate(f"{by_testid('follow-live')}.click()")
        await browser.wait_for(
            f"{by_testid('step-counter')}.textContent === 'Step {total} / {total}'",
            f"the last step ({total}) with follow-live back on",
        )
        assert await browser.text("agent-position") == point_text(last.payload.to)
        assert "cancelled" in await browser.evaluate(
            "document.getElementById('run-status').textContent"
        )
        await browser.wait_for(f"{item}.dataset.status === 'cancelled'", "the list to show the end")
        # Whole device pixels per tile, so cells stay crisp.
        assert await browser.evaluate(f"{by_testid('maze-canvas')}.width % 121") == 0
        await browser.screenshot(
            tmp_path / "viewer-finished.png", artifact_dir() / "viewer-finished.png"
        )
        assert not [line for line in browser.console if line.startswith("exception")], (
            browser.console
        )
