"""One worker process: the maze processor, the agent runner, the batch scheduler and the
run-end forwarder, side by side.

Any one failing stops the others and the worker exits with the error, so a supervisor
(or `oriole up`) sees it; another worker of the same groups takes over its partitions and
rebuilds the runs from the event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from oriole.environment.settings import Settings
from oriole.kafka.topics import Topics
from oriole.maze import Maze
from providers.factory import ConfiguredAgentFactory, allowed_endpoints
from streams.agent_runner import AgentRunner
from streams.batch_forwarder import BatchForwarder
from streams.batch_scheduler import BatchScheduler
from streams.maze_processor import MazeProcessor, ParentsOf


@dataclass
class Worker:
    processor: MazeProcessor
    runner: AgentRunner
    agents: ConfiguredAgentFactory
    batches: BatchScheduler
    forwarder: BatchForwarder
    #: Closed when the worker stops (the archive reader of forks, when it owns a pool).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Between the start and the end of :meth:`run`.
    running: bool = field(default=False, init=False)

    @classmethod
    def create(
        cls,
        settings: Settings,
        bootstrap_servers: str,
        topics: Topics,
        find_maze: Callable[[str], Maze],
        parents: ParentsOf | None = None,
        batch_parents: ParentsOf | None = None,
        closers: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> Worker:
        """``find_maze`` is the process's one maze catalogue (shared with the gateway);
        ``parents`` and ``batch_parents`` read the parents a start or a batch forks from the
        archive (no forks without them)."""
        agents = ConfiguredAgentFactory(settings)
        processor = MazeProcessor(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            find_maze=find_maze,
            client_id=settings.kafka_client_id,
            prices=agents.prices,
            endpoints=allowed_endpoints(settings),
            parents=parents,
        )
        runner = AgentRunner(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            agent_factory=agents,
            client_id=settings.kafka_client_id,
            max_concurrency=settings.max_concurrent_runs,
            redact=agents.redactor,
        )
        batches = BatchScheduler(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            find_maze=find_maze,
            prices=agents.prices,
            endpoints=allowed_endpoints(settings),
            client_id=settings.kafka_client_id,
            parents=batch_parents,
        )
        forwarder = BatchForwarder(
            bootstrap_servers=bootstrap_servers, topics=topics, client_id=settings.kafka_client_id
        )
        return cls(processor, runner, agents, batches, forwarder, list(closers or []))

    async def run(self, stop: asyncio.Event) -> None:
        self.running = True
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.processor.run(stop), name="maze processor")
                group.create_task(self.runner.run(stop), name="agent runner")
                group.create_task(self.batches.run(stop), name="batch scheduler")
                group.create_task(self.forwarder.run(stop), name="batch forwarder")
        finally:
            self.running = False
            await self.agents.close()
            for close in self.closers:
                await close()

    async def wait_ready(self) -> None:
        """Until each has partitions assigned and its runs (and batches) rebuilt."""
        await self.processor.ready.wait()
        await self.runner.ready.wait()
        await self.batches.ready.wait()

    def health(self) -> dict[str, bool]:
        """For /healthz, cheap: each part runs and has joined its group and rebuilt its state
        (false for a moment during a rebalance, when it owns nothing it can act on)."""
        return {
            "maze processor": self.running and self.processor.ready.is_set(),
            "agent runner": self.running and self.runner.ready.is_set(),
            "batch scheduler": self.running and self.batches.ready.is_set(),
            "batch forwarder": self.running,
        }

    def healthy(self) -> bool:
        return all(self.health().values())

    def consumers(self) -> list[tuple[str, Any]]:
        """(group, consumer) of each part, for the consumer lag (a consumer is None until its
        part starts)."""
        return [
            (self.processor.group_id, self.processor._consumer),
            (self.runner.group_id, self.runner._consumer),
            (self.batches.group_id, self.batches._consumer),
            (self.forwarder.group_id, self.forwarder._consumer),
        ]
