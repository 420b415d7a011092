""" "Fork from here" in a real headless Chromium against the real stack in-process (the
session's embedded broker, a worker that reads forks' parents from the archive, a projector
into a fresh PostgreSQL database, the gateway serving the viewer): a parent run played to its
end and archived is opened, scrubbed to a step and forked with another built-in agent from the
form; a refused fork shows its problems as text; the accepted one is opened and followed live
to its end, shows its parent, its inherited path, and is listed on its parent's page. Every
wait polls the page or the database with a generous deadline; nothing sleeps to synchronise."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from oriole import generators
from oriole.events import ActionCompleted, RunStarted
from projections.archive_reader import ArchiveReader
from tests.chromium_support import Chromium, artifact_dir, chromium, needs_chromium
from tests.kafka_support import (
    EVENT_TIMEOUT,
    TopicReader,
    eventually,
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

PARENT = "run-viewer-fork-parent"
FORK_STEP = 12
#: The built-in agent the fork is given (the parent's is `random`).
FORK_AGENT = "frontier"
#: Markup typed into the form: the gateway's refusal names it, the page must show it as text.
HOSTILE_MODEL = '<img src=x onerror="window.pwned = 1">'


def outcomes(records: list[Any], run_id: str) -> list[ActionCompleted]:
    return [e for e in run_events(records, run_id) if isinstance(e, ActionCompleted)]


def point_text(point: Any) -> str:
    return f"({point.x}, {point.y})"


async def counter(browser: Chromium) -> tuple[int, int]:
    text = await browser.text("step-counter")
    match = re.fullmatch(r"Step (\d+) / (\d+)", text)
    assert match, f"unexpected step counter {text!r}"
    return int(match.group(1)), int(match.group(2))


async def projected(pool: Any, run_id: str, **columns: Any) -> None:
    """Until the run's experiment row is projected, finished, with these column values."""

    async def check() -> bool:
        row = await pool.fetchrow("SELECT * FROM experiments WHERE run_id = $1", run_id)
        if row is None or row["status"] == "running":
            return False
        return all(row[name] == value for name, value in columns.items())

    await eventually(check)


async def set_field(browser: Chromium, testid: str, value: str) -> None:
    """Type into a form field as a user would: its value, then ``input`` and ``change``."""
    await browser.evaluate(
        f"(f => {{ f.value = {js(value)}; f.dispatchEvent(new Event('input', {{bubbles: true}}));"
        " f.dispatchEvent(new Event('change', {bubbles: true})); })"
        f"({by_testid(testid)})"
    )


async def field(browser: Chromium, testid: str) -> Any:
    return await browser.evaluate(f"{by_testid(testid)}.value")


@needs_chromium
async def test_fork_from_here_starts_a_child_the_viewer_follows_live(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    # A big perfect maze: neither the parent's random walk nor the fork's frontier agent
    # finds the goal before its limits, so the fork lives long enough to be followed live.
    maze = generators.generate("backtracker", 121, 121, seed=11, name="viewer-fork")
    body = start_event(
        PARENT,
        maze.to_dict(),
        agent={"provider": "builtin", "model": "random", "seed": 5},
        limits={"max_footsteps": 60, "max_actions": 80, "max_duration_seconds": 900},
    )
    shots = artifact_dir()
    async with (
        database(pg_dsn) as pool,
        # A worker whose admission reads forks' parents through the pool (as `oriole up`'s).
        running_worker(stack, parents=ArchiveReader(pool=pool).parents),
        running_projector(stack, pool),
        running_gateway(stack, pool) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
        chromium(tmp_path) as browser,
    ):
        await publish(kafka_broker, stack.topics.experiments_start, body, PARENT.encode())
        await log.until(finished([PARENT]))
        parent_steps = outcomes(log.records, PARENT)
        total = len(parent_steps)
        assert total > FORK_STEP
        await projected(pool, PARENT)  # a fork starts from the archive

        # The parent, finished: no lineage, no forks yet, no fork colours in the legend.
        await browser.navigate(f"{gateway.url}/#run={PARENT}")
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'finished'", "the parent's end"
        )
        await browser.wait_for(
            f"{by_testid('step-counter')}.textContent === 'Step {total} / {total}'",
            "the parent's last step",
        )
        assert await browser.text("run-lineage") == "not a fork"
        await browser.wait_for(f"{by_testid('run-children')}.textContent === 'none'", "no forks")
        legend = f"[...{by_testid('maze-legend')}.children].map(li => li.dataset.color)"
        assert "inherited" not in await browser.evaluate(legend)

        # Record each state of the run feeds with whether the run had ended by then.
        await browser.evaluate(
            "(() => { const v = window.orioleViewer; const set = v.setRunState.bind(v);"
            " window.feedStates = [];"
            " v.setRunState = (state, text) => { window.feedStates.push("
            "[v.model.runId, state, Boolean(v.model.finished), v.model.steps.length]);"
            " set(state, text); }; })()"
        )

        # Scrub to the fork point and open the form: the parent's agent and limits.
        await scrub_to(browser, FORK_STEP)
        await browser.evaluate(f"{by_testid('fork-open')}.click()")
        await browser.wait_for(f"!{by_testid('fork-form')}.hidden", "the fork form")
        assert await browser.text("fork-target") == f"Fork {PARENT} after step {FORK_STEP}"
        assert [
            await field(browser, name)
            for name in ("fork-provider", "fork-model", "fork-seed", "fork-max-footsteps")
        ] == ["builtin", "random", "5", "60"]
        assert await field(browser, "fork-max-actions") == "80"

        # A refused fork: every problem as "field: reason", the user's text as text (here an
        # unknown agent, and more footsteps than actions).
        await set_field(browser, "fork-model", HOSTILE_MODEL)
        await set_field(browser, "fork-seed", "")
        await set_field(browser, "fork-max-footsteps", "400")
        await set_field(browser, "fork-max-actions", "250")
        await set_field(browser, "fork-comment", "forked in the viewer <b>test</b>")
        await browser.evaluate(f"{by_testid('fork-submit')}.click()")
        problems = by_testid("fork-problems")
        await browser.wait_for(f"!{problems}.hidden", "the refusal's problems")
        listed = await browser.evaluate(f"[...{problems}.children].map(li => li.textContent)")
        shown = dict(item.split(": ", 1) for item in listed)
        assert sorted(shown) == ["agent.model", "limits.max_footsteps"], listed
        assert shown["agent.model"].startswith(f"unknown built-in agent '{HOSTILE_MODEL}'")
        assert shown["limits.max_footsteps"].startswith("400 can never be reached")
        assert await browser.evaluate(f"{problems}.querySelector('img, b') === null")
        assert await browser.evaluate("window.pwned === undefined")
        assert await browser.evaluate("location.hash") == f"#run={PARENT}"

        # The accepted fork: the viewer opens it and follows it live.
        await set_field(browser, "fork-model", FORK_AGENT)
        await set_field(browser, "fork-max-footsteps", "250")
        await browser.evaluate(f"{by_testid('fork-submit')}.click()")
        await browser.wait_for(f"location.hash !== {js('#run=' + PARENT)}", "the fork to open")
        child = await browser.evaluate("decodeURIComponent(location.hash.slice('#run='.length))")
        assert child and child != PARENT
        assert await browser.evaluate(f"{by_testid('fork-form')}.hidden")
        await browser.wait_for(
            f"{by_testid('run-lineage')}.textContent === "
            f"{js(f'forked from {PARENT} at step {FORK_STEP}')}",
            "the fork's parent",
        )
        await log.until(finished([child]))
        child_events = run_events(log.records, child)
        started = child_events[0]
        assert isinstance(started, RunStarted)
        assert started.payload.spec.agent.model == FORK_AGENT
        assert started.payload.spec.comment == "forked in the viewer <b>test</b>"
        fork_of = started.payload.spec.fork_of
        assert fork_of is not None and (fork_of.run_id, fork_of.after_step) == (PARENT, FORK_STEP)
        own = outcomes(log.records, child)
        child_total = own[-1].payload.step
        assert own[0].payload.step == FORK_STEP + 1 and child_total == FORK_STEP + len(own)
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'finished'",
            "the fork's end",
            timeout=EVENT_TIMEOUT,
        )
        await browser.wait_for(
            f"{by_testid('step-counter')}.textContent === 'Step {child_total} / {child_total}'",
            "the fork's last step, followed",
        )
        assert await browser.evaluate(f"{by_testid('follow-live')}.checked") is True
        assert await browser.text("agent-position") == point_text(own[-1].payload.to)
        states = await browser.evaluate("window.feedStates")
        live = [s for s in states if s[0] == child and s[1] == "live"]
        assert live and not live[0][2], f"the fork was not followed live: {states}"
        assert "finished" in [s[1] for s in states if s[0] == child]
        await browser.screenshot(tmp_path / "viewer-fork.png", shots / "viewer-fork.png")

        # The inherited path is its own, dimmer layer; the legend explains it for a fork.
        assert await browser.evaluate(legend) == [
            "empty", "wall", "goal", "start", "agent", "path", "inherited", "fork", "vision",
            "seen", "fog",
        ]  # fmt: skip
        own_tiles = {(o.payload.to.x, o.payload.to.y) for o in own}
        inherited_only = [
            o.payload.to
            for o in parent_steps[:FORK_STEP]
            if (o.payload.to.x, o.payload.to.y) not in own_tiles
        ]
        assert inherited_only, "the fork walked over every inherited tile"
        tile = inherited_only[-1]
        alpha = (
            "(layer => layer.getContext('2d').getImageData({x}, {y}, 1, 1).data[3])"
            "(window.orioleViewer.renderer.{layer})"
        )
        inherited_alpha = alpha.format(x=tile.x, y=tile.y, layer="inheritedLayer")
        assert await browser.evaluate(inherited_alpha) == 255
        assert await browser.evaluate(alpha.format(x=tile.x, y=tile.y, layer="pathLayer")) == 0

        # An inherited step says where it came from.
        await scrub_to(browser, 3)
        assert f"(inherited from {PARENT})" in await browser.evaluate(
            "document.getElementById('step-number').textContent"
        )
        assert PARENT in await browser.text("reasoning")

        # The parent's page lists the fork (once the projector has it), with its step and agent.
        await projected(pool, child, forked_from=PARENT, fork_step=FORK_STEP)
        await browser.evaluate(f"{by_testid('run-lineage')}.querySelector('a').click()")
        await browser.wait_for(f"location.hash === {js('#run=' + PARENT)}", "the parent again")
        listed_child = f"{by_testid('run-children')}.querySelector('li[data-run-id={js(child)}]')"
        await browser.wait_for(f"!!{listed_child}", "the fork in its parent's forks")
        text = await browser.evaluate(f"{listed_child}.textContent")
        assert text.startswith(child), text
        assert f"at step {FORK_STEP} · builtin:{FORK_AGENT}" in text, text
        assert await browser.evaluate(f"{listed_child}.dataset.status") in ("stopped", "succeeded")
        assert await browser.text("run-lineage") == "not a fork"
        await browser.screenshot(tmp_path / "viewer-parent.png", shots / "viewer-parent.png")

        # A run this page started that the gateway does not know yet (a busy worker) is
        # retried, not given up: the page waits until its first event can be followed.
        late = "run-viewer-fork-late"
        await browser.evaluate(
            f"window.orioleViewer.expectRun({js(late)}); location.hash = {js('#run=' + late)}"
        )
        await browser.wait_for(
            f"window.feedStates.some(s => s[0] === {js(late)} && s[1] === 'error')",
            "the gateway's first answer: an unknown run",
        )
        status = by_testid("connection-status")
        assert await browser.evaluate(f"{status}.dataset.state") == "connecting"
        hint = await browser.evaluate("document.getElementById('stage-hint').textContent")
        assert not hint.startswith("Cannot open"), hint
        small = generators.generate("backtracker", 15, 15, seed=2, name="late").to_dict()
        late_start = start_event(late, small, limits={"max_footsteps": 30})
        await publish(kafka_broker, stack.topics.experiments_start, late_start, late.encode())
        await log.until(finished([late]))
        late_total = len(outcomes(log.records, late))
        await browser.wait_for(
            f"{by_testid('connection-status')}.dataset.state === 'finished' && "
            f"{by_testid('step-counter')}.textContent === 'Step {late_total} / {late_total}'",
            "the late run, followed once it started",
        )
        assert not [line for line in browser.console if line.startswith("exception")], (
            browser.console
        )
