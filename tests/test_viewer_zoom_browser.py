"""The viewer on big mazes in a real headless Chromium: zoom (wheel, ctrl+wheel, touch pinch,
buttons, keys) changes the tiles in view, a drag pans, "fit" shows the whole maze, "follow
agent" keeps the agent centred as it moves, the legend shows the renderer's colours, a redraw
of a 1000×1000 maze stays cheap, and a failed run shows its error once.

Archived runs of a built-in agent (played with the real rules in memory, then stored in a
fresh PostgreSQL database) are served by the real gateway. The view is read from the canvas'
read-only ``data-`` attributes (mode, CSS pixels per tile, the tiles in view, the tile at the
centre). Every wait polls the page with a generous deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import ActionCompleted, RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData
from oriole.local_run import LocalRun
from projections.store import store_batch
from tests.chromium_support import Chromium, artifact_dir, chromium, needs_chromium
from tests.kafka_support import make_stack
from tests.viewer_browser_support import by_testid, database, js, running_gateway, scrub_to

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

CANVAS = by_testid("maze-canvas")
#: A generous bound for one redraw of a 1000×1000 maze on a loaded 2-core machine: drawing
#: every tile one by one would take far longer; copying the window in view takes a few ms.
MAX_REDRAW_MS = 200.0
#: Every colour the legend explains (colors.js: all but the hover outline).
LEGEND_KEYS = ["empty", "wall", "goal", "start", "agent", "path", "vision", "seen", "fog"]


async def played_run(run_id: str, size: int, actions: int, seed: int) -> list[RunEvent]:
    """A frontier agent's first ``actions`` actions in a ``size``×``size`` maze, cancelled."""
    maze = generators.generate("backtracker", size, size, seed=seed, name=f"zoom-{size}")
    request = ExperimentStart(
        run_id=run_id,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="frontier"),
    )
    run = LocalRun(request, maze)
    agent = create_builtin(request.agent)
    while not run.state.is_finished and len(run.state.actions) < actions:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))
    if not run.state.is_finished:
        run.cancel("enough for the viewer test")
    return run.events


async def view(browser: Chromium) -> dict[str, Any]:
    """The canvas' view: mode, CSS px per tile, tiles in view (x0 y0 x1 y1), centre tile."""
    data = await browser.evaluate(f"({{...{CANVAS}.dataset}})")
    x0, y0, x1, y1 = (int(v) for v in data["visible"].split())
    cx, cy = (float(v) for v in data["centre"].split())
    return {
        "mode": data["viewMode"],
        "scale": float(data["scale"]),
        "box": (x0, y0, x1, y1),
        "tiles": (x1 - x0) * (y1 - y0),
        "centre": (cx, cy),
        "centre_text": data["centre"],
    }


async def wait_view(browser: Chromium, condition: str, what: str) -> dict[str, Any]:
    """Wait until ``condition`` (JS over ``d``, the canvas dataset) holds; returns the view."""
    await browser.wait_for(f"(d => {condition})({CANVAS}.dataset)", what)
    return await view(browser)


async def wrap_centre(browser: Chromium) -> tuple[float, float]:
    rect = await browser.evaluate(
        "(r => [r.left + r.width / 2, r.top + r.height / 2])"
        "(document.getElementById('canvas-wrap').getBoundingClientRect())"
    )
    return float(rect[0]), float(rect[1])


async def wheel(browser: Chromium, delta_y: float, *, ctrl: bool = False) -> None:
    x, y = await wrap_centre(browser)
    await browser.command(
        "Input.dispatchMouseEvent",
        {
            "type": "mouseWheel",
            "x": x,
            "y": y,
            "deltaX": 0,
            "deltaY": delta_y,
            "modifiers": 2 if ctrl else 0,
        },
    )


async def drag(browser: Chromium, dx: float, dy: float) -> None:
    x, y = await wrap_centre(browser)
    mouse = {"button": "left", "clickCount": 1}
    await browser.command(
        "Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, "buttons": 1, **mouse}
    )
    for k in (1, 2, 3, 4):
        await browser.command(
            "Input.dispatchMouseEvent",
            {"type": "mouseMoved", "x": x + dx * k / 4, "y": y + dy * k / 4, "buttons": 1, **mouse},
        )
    await browser.command(
        "Input.dispatchMouseEvent",
        {"type": "mouseReleased", "x": x + dx, "y": y + dy, "buttons": 0, **mouse},
    )


async def pinch(browser: Chromium, start: float, end: float) -> None:
    """Two fingers from ``start`` to ``end`` CSS pixels apart around the view's centre."""
    x, y = await wrap_centre(browser)

    def points(half: float) -> list[dict[str, float]]:
        return [{"x": x - half, "y": y, "id": 1}, {"x": x + half, "y": y, "id": 2}]

    await browser.command(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(start / 2)}
    )
    for k in range(1, 6):
        half = (start + (end - start) * k / 5) / 2
        await browser.command(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(half)}
        )
    await browser.command("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


async def press(browser: Chromium, key: str, code: int) -> None:
    for kind in ("keyDown", "keyUp"):
        params = {"type": kind, "key": key, "windowsVirtualKeyCode": code}
        if kind == "keyDown" and len(key) == 1:
            params["text"] = key
        await browser.command("Input.dispatchKeyEvent", params)


async def agent_at(browser: Chromium) -> tuple[int, int]:
    match = re.fullmatch(r"\((\d+), (\d+)\)", await browser.text("agent-position"))
    assert match, await browser.text("agent-position")
    return int(match.group(1)), int(match.group(2))


async def open_archived(browser: Chromium, url: str, run_id: str) -> None:
    await browser.navigate(f"{url}/#run={run_id}")
    await browser.wait_for(
        f"document.getElementById('run-id').textContent === {js(run_id)}", f"{run_id} to open"
    )
    await browser.wait_for(
        f"{by_testid('connection-status')}.dataset.state === 'finished'",
        f"the archived run {run_id} to load",
    )
    await browser.wait_for(f"!!{CANVAS}.dataset.visible", "the first frame")


@needs_chromium
async def test_zoom_pan_fit_follow_and_legend_on_big_mazes(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    size = 501
    events = await played_run("run-zoom-501", size, 120, seed=7)
    big = await played_run("run-zoom-1000", 1000, 40, seed=3)
    steps = sum(isinstance(e, ActionCompleted) for e in events)
    async with database(pg_dsn) as pool:
        async with pool.acquire() as conn:
            await store_batch(conn, events)
            await store_batch(conn, big)
        async with running_gateway(stack, pool) as gateway, chromium(tmp_path) as browser:
            await open_archived(browser, gateway.url, "run-zoom-501")

            # Fit (the default): the whole maze in view.
            fit = await view(browser)
            assert fit["mode"] == "fit" and fit["box"] == (0, 0, size, size), fit
            assert await browser.evaluate(f"{by_testid('zoom-fit')}.ariaPressed") == "true"

            # The mouse wheel zooms in around the pointer: fewer tiles in view, each bigger.
            await wheel(browser, -400)
            wheeled = await wait_view(browser, f"+d.scale > {fit['scale']}", "the wheel to zoom")
            assert wheeled["mode"] == "free"
            assert wheeled["tiles"] < fit["tiles"] * 0.75, (fit, wheeled)
            # A trackpad pinch arrives as ctrl+wheel: it zooms too (the page does not).
            await wheel(browser, -60, ctrl=True)
            pinched = await wait_view(browser, f"+d.scale > {wheeled['scale']}", "ctrl+wheel")
            assert pinched["tiles"] < wheeled["tiles"]
            assert await browser.evaluate("visualViewport.scale") == 1
            # The buttons and the keys, in whole steps.
            await browser.evaluate(f"{by_testid('zoom-in')}.click()")
            buttoned = await wait_view(browser, f"+d.scale > {pinched['scale']}", "zoom-in")
            await press(browser, "-", 189)
            keyed = await wait_view(browser, f"+d.scale < {buttoned['scale']}", "the - key")
            await press(browser, "+", 187)
            plus = await wait_view(browser, f"+d.scale > {keyed['scale']}", "the + key")
            await browser.evaluate(f"{by_testid('zoom-out')}.click()")
            zoomed = await wait_view(browser, f"+d.scale < {plus['scale']}", "zoom-out")
            assert fit["tiles"] / 3 > zoomed["tiles"] > 0, (fit, zoomed)
            level = await browser.text("zoom-level")
            assert level.endswith("px/tile") and float(level.split()[0]) > fit["scale"], level
            await browser.screenshot(artifact_dir() / "viewer-zoomed.png")
            # The tile under the mouse is the zoomed view's tile at that point.
            x, y = await wrap_centre(browser)
            await browser.command(
                "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}
            )
            await browser.wait_for(f"!{by_testid('hover-coord')}.hidden", "the hovered tile")
            hovered = re.match(r"\((\d+), (\d+)\)", await browser.text("hover-coord"))
            assert hovered, await browser.text("hover-coord")
            assert abs(int(hovered.group(1)) + 0.5 - zoomed["centre"][0]) <= 1.5, hovered
            assert abs(int(hovered.group(2)) + 0.5 - zoomed["centre"][1]) <= 1.5, hovered

            # A drag pans: the view moves left by the dragged distance (in tiles).
            await drag(browser, 120, 80)
            panned = await wait_view(
                browser, f"d.centre !== {js(zoomed['centre_text'])}", "the drag"
            )
            dx = zoomed["centre"][0] - panned["centre"][0]
            dy = zoomed["centre"][1] - panned["centre"][1]
            assert dx == pytest.approx(120 / zoomed["scale"], abs=1.5), (zoomed, panned)
            assert dy == pytest.approx(80 / zoomed["scale"], abs=1.5), (zoomed, panned)
            assert panned["scale"] == zoomed["scale"] and panned["mode"] == "free"

            # 0: back to the whole maze.
            await press(browser, "0", 48)
            refit = await wait_view(browser, "d.viewMode === 'fit'", "the 0 key")
            assert refit["box"] == (0, 0, size, size) and refit["scale"] == fit["scale"]

            # A two-finger touch pinch zooms in.
            await pinch(browser, 60, 300)
            touched = await wait_view(browser, f"+d.scale > {fit['scale']}", "a touch pinch")
            assert touched["tiles"] < fit["tiles"]

            # Follow agent (a): the agent stays centred at this zoom as it moves.
            await press(browser, "a", 65)
            await wait_view(browser, "d.viewMode === 'follow'", "the a key")
            assert await browser.evaluate(f"{by_testid('zoom-follow')}.ariaPressed") == "true"
            seen = set()
            for step in range(0, steps + 1, max(1, steps // 12)):
                await scrub_to(browser, step)
                x, y = await agent_at(browser)
                current = await wait_view(
                    browser,
                    f"Math.abs(+d.centre.split(' ')[0] - {x + 0.5}) <= 1 && "
                    f"Math.abs(+d.centre.split(' ')[1] - {y + 0.5}) <= 1",
                    f"the view to centre on the agent at ({x}, {y}), step {step}",
                )
                x0, y0, x1, y1 = current["box"]
                assert x0 <= x < x1 and y0 <= y < y1, (step, (x, y), current)
                assert current["tiles"] < fit["tiles"] and current["mode"] == "follow"
                seen.add((x, y))
            assert len(seen) > 3, f"the agent hardly moved: {seen}"
            await browser.screenshot(artifact_dir() / "viewer-follow.png")
            # Panning by hand leaves follow mode.
            await drag(browser, -60, 0)
            await wait_view(browser, "d.viewMode === 'free'", "a drag to leave follow mode")
            assert await browser.evaluate(f"{by_testid('zoom-follow')}.ariaPressed") == "false"

            # The legend: one swatch per maze colour, in the renderer's colours, in view.
            await check_legend(browser)

            # 1000×1000: a redraw copies the window in view, never a tile at a time.
            await open_archived(browser, gateway.url, "run-zoom-1000")
            await browser.evaluate("document.getElementById('show-fog').click()")
            await press(browser, "0", 48)
            whole = await wait_view(browser, "d.visible === '0 0 1000 1000'", "the 1000 maze fit")
            at_fit = await redraw_times(browser)
            await wheel(browser, -400)
            near = await wait_view(browser, f"+d.scale > {whole['scale']}", "zoom on 1000")
            zoomed_in = await redraw_times(browser)
            print(
                f"\nredraw of 1000x1000, whole maze in view ({whole['scale']} px/tile): "
                f"median {at_fit['median']:.2f} ms, max {at_fit['max']:.2f} ms, "
                f"{at_fit['calls']} draw calls; zoomed ({near['tiles']} tiles in view): "
                f"median {zoomed_in['median']:.2f} ms, max {zoomed_in['max']:.2f} ms"
            )
            for measured in (at_fit, zoomed_in):
                assert measured["median"] < MAX_REDRAW_MS, measured
                assert measured["calls"] < 2_000, measured  # not a million fillRects
            assert not [line for line in browser.console if line.startswith("exception")], (
                browser.console
            )


async def check_legend(browser: Chromium) -> None:
    legend = by_testid("maze-legend")
    keys = await browser.evaluate(f"[...{legend}.children].map(li => li.dataset.color)")
    assert keys == LEGEND_KEYS
    box = await browser.evaluate(
        f"(r => [r.width, r.height, r.top])({legend}.getBoundingClientRect())"
    )
    assert box[0] > 0 and box[1] > 0, box
    assert box[2] < await browser.evaluate("innerHeight"), "the legend is off screen"
    # The canvas' own parser says whether the swatch and the renderer's colour are the same.
    same_colours = """(() => {
      const probe = document.createElement('canvas').getContext('2d');
      const rgb = (c) => {
        probe.clearRect(0, 0, 1, 1);
        probe.fillStyle = c;
        probe.fillRect(0, 0, 1, 1);
        return Array.from(probe.getImageData(0, 0, 1, 1).data).join(',');
      };
      const colors = window.orioleViewer.renderer.colors;
      return [...document.querySelectorAll('[data-testid=maze-legend] li')].map((li) => {
        const fill = li.querySelector('.swatch-fill');
        const key = li.dataset.color;
        return [key, rgb(getComputedStyle(fill).backgroundColor), rgb(colors[key]),
                li.textContent.trim()];
      });
    })()"""
    for key, swatch, renderer, label in await browser.evaluate(same_colours):
        assert swatch == renderer, (key, swatch, renderer)
        assert label, key
    # One source: a colour changed in Settings changes the renderer and the legend alike.
    await browser.evaluate(
        "(i => { i.value = '#123456'; i.dispatchEvent(new Event('input')); })"
        "(document.getElementById('color-wall'))"
    )
    await browser.wait_for(
        f"getComputedStyle({by_testid('legend-wall')}).backgroundColor === 'rgb(18, 52, 86)'",
        "the legend to show the new wall colour",
    )
    assert await browser.evaluate("window.orioleViewer.renderer.colors.wall") == "#123456"
    await browser.evaluate("document.getElementById('settings-reset').click()")


async def redraw_times(browser: Chromium) -> dict[str, float]:
    """Time forced redraws (flushed with a pixel read); count the draw calls of one."""
    result = await browser.evaluate(
        """(() => {
      const viewer = window.orioleViewer;
      const renderer = viewer.renderer;
      const ctx = renderer.ctx;
      const times = [];
      for (let i = 0; i < 12; i++) {
        const t0 = performance.now();
        renderer.draw(viewer.viewState());
        ctx.getImageData(0, 0, 1, 1); // the drawing is done, not only queued
        times.push(performance.now() - t0);
      }
      let calls = 0;
      const originals = {};
      for (const name of ['fillRect', 'drawImage', 'strokeRect', 'arc']) {
        originals[name] = ctx[name];
        ctx[name] = function (...args) { calls++; return originals[name].apply(this, args); };
      }
      try { renderer.draw(viewer.viewState()); } finally { Object.assign(ctx, originals); }
      for (const name of Object.keys(originals)) delete ctx[name];
      return { times, calls };
    })()"""
    )
    times = result["times"]
    return {
        "median": statistics.median(times),
        "max": max(times),
        "calls": result["calls"],
    }


@needs_chromium
async def test_a_failed_run_shows_its_error_once(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-viewer-failed"
    message = "the model server answered 503: overloaded, try later"
    maze = generators.generate("backtracker", 15, 15, seed=3, name="viewer-failed")
    request = ExperimentStart(
        run_id=run_id,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="random", seed=1),
    )
    run = LocalRun(request, maze)
    run.act("move_north", turn=1)
    run.fail("ProviderUnavailable", message)
    async with database(pg_dsn) as pool:
        async with pool.acquire() as conn:
            await store_batch(conn, run.events)
        async with running_gateway(stack, pool) as gateway, chromium(tmp_path) as browser:
            await open_archived(browser, gateway.url, run_id)
            await browser.wait_for(
                f"document.getElementById('run-status').textContent.includes({js(message)})",
                "the run status to show the error",
            )
            status = await browser.evaluate("document.getElementById('run-status').textContent")
            assert status.count(message) == 1, status
            assert status.count("ProviderUnavailable") == 1, status
            page = await browser.evaluate("document.body.innerText")
            assert page.count(message) == 1, page
            assert "failed" in await browser.evaluate(
                "document.getElementById('run-outcome').textContent"
            )
