"""`oriole up` keeps its services alive, and a signal is always obeyed (issue 11)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import ClassVar

import pytest

from oriole.cli.services import Supervised, until_signalled

pytestmark = pytest.mark.asyncio


class Flaky:
    """Fails on its first run (as a service hit by a poison record once did), then serves."""

    instances: ClassVar[list[Flaky]] = []

    def __init__(self) -> None:
        self.serving = asyncio.Event()
        Flaky.instances.append(self)

    async def run(self, stop: asyncio.Event) -> None:
        if len(Flaky.instances) == 1:
            raise RecursionError("maximum recursion depth exceeded")
        self.serving.set()
        await stop.wait()


async def test_a_failed_service_is_started_again_and_the_others_go_on() -> None:
    Flaky.instances = []
    stop = asyncio.Event()
    supervised = Supervised("worker", Flaky, first_delay=0.01)
    other = asyncio.create_task(stop.wait())
    task = asyncio.create_task(supervised.run(stop))
    await asyncio.wait_for(_second_instance_serving(), 30)
    assert supervised.restarts == 1 and supervised.current is Flaky.instances[1]
    assert not task.done() and not other.done()
    stop.set()
    await asyncio.wait_for(task, 30)
    await other


async def _second_instance_serving() -> None:
    while len(Flaky.instances) < 2:
        await asyncio.sleep(0.01)
    await Flaky.instances[1].serving.wait()


async def test_a_service_that_ignores_its_stop_is_cancelled_after_the_grace() -> None:
    cancelled = asyncio.Event()

    async def stubborn(stop: asyncio.Event) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handlers are installed by now
        await stop.wait()
        try:
            await asyncio.Event().wait()  # e.g. waiting on a broker that is gone
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await asyncio.wait_for(until_signalled(stubborn, grace=0.2), 30)
    assert cancelled.is_set()


async def test_a_second_signal_stops_at_once() -> None:
    started, stopping = asyncio.Event(), asyncio.Event()

    async def stubborn(stop: asyncio.Event) -> None:
        started.set()
        await stop.wait()
        stopping.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(until_signalled(stubborn, grace=3600))
    await started.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(stopping.wait(), 30)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 30)
