"""The browser viewer in a real headless Chromium, against the real stack.

Chromium is driven over the Chrome DevTools Protocol with the ``websockets`` library (no
selenium or playwright). The stack is real and in-process: the session's embedded broker, a
worker, a projector into a fresh PostgreSQL database, and the gateway serving the viewer.
Every wait polls the page's DOM with a generous deadline (the test machine may be a loaded
2-core box); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.server import Gateway
from oriole import generators
from oriole.environment.catalogue import MazeCatalogue
from oriole.events import ActionCompleted, ActionRequested, RunEvent, RunStarted
from oriole.experiment import AgentSpec, ExperimentStart, MazeData
from oriole.intents import CancelRequest, ModelCall
from oriole.local_run import LocalRun
from projections.store import store_batch
from tests.kafka_support import (
    Stack,
    TopicReader,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

CHROMIUM = "/usr/bin/chromium"
#: Generous: Chromium and the stack share a possibly loaded 2-core machine.
BROWSER_START_TIMEOUT = 90.0
COMMAND_TIMEOUT = 60.0
DOM_TIMEOUT = 120.0

_DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserError(AssertionError):
    """Chromium did not do what the test asked; the message carries the page's console."""


class Chromium:
    """One headless Chromium process (its own process group) and one page, over CDP."""

    def __init__(self, user_data_dir: Path, *, width: int = 1400, height: int = 950) -> None:
        self.user_data_dir = user_data_dir
        self.width = width
        self.height = height
        self.process: asyncio.subprocess.Process | None = None
        self.ws: ClientConnection | None = None
        self.session_id: str | None = None
        self.console: list[str] = []
        self.stderr_tail: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.user_data_dir}",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--mute-audio",
            "--hide-scrollbars",
            f"--window-size={self.width},{self.height}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as a whole at the end
        )
        url = await asyncio.wait_for(self._devtools_url(), BROWSER_START_TIMEOUT)
        self._tasks.append(asyncio.create_task(self._drain_stderr()))
        self.ws = await connect(url, max_size=None, compression=None, open_timeout=COMMAND_TIMEOUT)
        self._tasks.append(asyncio.create_task(self._read()))
        target = await self.command("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = await self.command(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session_id = attached["sessionId"]
        await self.command("Page.enable")
        await self.command("Runtime.enable")
        await self.command(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": self.width,
                "height": self.height,
                "deviceScaleFactor": 1,
                "mobile": False,
            },
        )

    async def _devtools_url(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        while True:
            line = await self.process.stderr.readline()
            if not line:
                raise BrowserError(
                    "Chromium exited before it listened:\n" + "\n".join(self.stderr_tail)
                )
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail = [*self.stderr_tail[-40:], text]
            match = _DEVTOOLS_URL.search(text)
            if match:
                return match.group(1)

    async def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.stderr_tail = [*self.stderr_tail[-40:], line.decode(errors="replace").rstrip()]

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                future = self._pending.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
                elif message.get("method") == "Runtime.consoleAPICalled":
                    params = message["params"]
                    texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                    self.console.append(f"console.{params['type']}: {' '.join(texts)}")
                elif message.get("method") == "Runtime.exceptionThrown":
                    details = message["params"]["exceptionDetails"]
                    exception = details.get("exception", {}).get("description", details["text"])
                    self.console.append(f"exception: {exception}")
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the DevTools connection closed"))

    async def command(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        assert self.ws is not None
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.ws.send(json.dumps(message))
        reply = await asyncio.wait_for(future, COMMAND_TIMEOUT)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        reply = await self.command(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = DOM_TIMEOUT) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        value: Any = None
        while loop.time() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)  # polling interval, not synchronisation
        raise BrowserError(
            f"timed out after {timeout:.0f} s waiting for {what} (last value {value!r}); "
            f"page console: {self.console[-20:]}; status: {await self.text('connection-status')!r}"
        )

    async def navigate(self, url: str) -> None:
        await self.command("Page.navigate", {"url": url})
        await self.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'",
            f"{url} to load",
        )

    async def text(self, testid: str) -> str:
        value = await self.evaluate(
            f"(document.querySelector('[data-testid={testid}]') || {{}}).textContent || ''"
        )
        return str(value)

    async def screenshot(self, *paths: Path) -> bytes:
        reply = await self.command("Page.captureScreenshot", {"format": "png"})
        data = base64.b64decode(reply["data"])
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return data

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.command("Browser.close", session=False), 10)
            with contextlib.suppress(Exception):
                await self.ws.close()
        process = self.process
        if process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            # The whole process group: renderers, GPU and zygote processes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(process.wait(), 10)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Chromium]:
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        await browser.start()
        yield browser
    finally:
        await browser.close()


def artifact_dir() -> Path:
    """Where screenshots go besides tmp_path (created on demand; never added to git)."""
    path = Path(os.environ.get("ORIOLE_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


needs_chromium = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)),
    reason=f"{CHROMIUM} is not installed (apt-get install chromium) — the browser test needs it",
)


# --- the stack ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_gateway(
    stack: Stack, pool: Any, tokens: dict[str, str] | None = None
) -> AsyncIterator[Gateway]:
    settings = stack.settings.model_copy(
        update={"gateway_host": "127.0.0.1", "gateway_port": 0, "gateway_tokens": tokens or {}}
    )
    gateway = Gateway(
        settings,
        bootstrap_servers=stack.bootstrap,
        topics=stack.topics,
        pool=pool,
        find_maze=MazeCatalogue.from_settings(settings).get,
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@contextlib.asynccontextmanager
async def database(dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


# --- page helpers ---------------------------------------------------------------------------


def by_testid(name: str) -> str:
    return f"document.querySelector('[data-testid={name}]')"


def js(value: Any) -> str:
    """A Python value as a JavaScript literal (JSON is valid JavaScript)."""
    return json.dumps(value)


async def scrub_to(browser: Chromium, step: int) -> None:
    """Drag the scrub bar as a user would: set its value and fire ``input``."""
    await browser.evaluate(
        f"(() => {{ const s = {by_testid('scrub')}; s.value = {step}; "
        "s.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )
    await browser.wait_for(
        f"{by_testid('step-counter')}.textContent.startsWith('Step {step} /')", f"step {step}"
    )


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


# --- the tests ------------------------------------------------------------------------------


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
