"""Waiting in the fault suite: poll a condition with a deadline, or fail fast.

Every phase of the suite waits for something the stack does by itself (a run moving, the
archive catching up), and must neither hang nor wait on figures nobody updates any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL = 0.2


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float) -> float | None:
    """Seconds until ``check`` holds (polled), or None if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return round(time.monotonic() - started, 2)
        await asyncio.sleep(POLL)
    return None


async def guarded(main: Awaitable[T], background: list[asyncio.Task[Any]]) -> T:
    """``main``, unless a background task (observer, supervisor) fails first: then its
    error, rather than waiting for deadlines on figures nobody updates any more."""
    task = asyncio.ensure_future(main)
    done, _ = await asyncio.wait({task, *background}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    failed = done.pop()
    failed.result()  # raises its error
    raise RuntimeError(f"background task {failed.get_name()} stopped")
