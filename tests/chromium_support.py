"""A real headless Chromium for the browser tests, driven over the Chrome DevTools Protocol
with the ``websockets`` library (no selenium or playwright).

Every wait has a generous deadline: the test machine may be a loaded 2-core box.
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

import pytest
from websockets.asyncio.client import ClientConnection, connect

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
