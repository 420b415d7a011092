"""One worker process: the maze processor and the agent runner, side by side.

Either one failing stops the other and the worker exits with the error, so a supervisor
(or `oriole up`) sees it; another worker of the same groups takes over its partitions and
rebuilds the runs from the event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from oriole.environment.settings import Settings
from oriole.kafka.topics import Topics
from oriole.maze import Maze
from providers.factory import ConfiguredAgentFactory, allowed_endpoints
from streams.agent_runner import AgentRunner
from streams.maze_processor import MazeProcessor


@dataclass
class Worker:
    processor: MazeProcessor
    runner: AgentRunner
    agents: ConfiguredAgentFactory

    @classmethod
    def create(
        cls,
        settings: Settings,
        bootstrap_servers: str,
        topics: Topics,
        find_maze: Callable[[str], Maze],
    ) -> Worker:
        """``find_maze`` is the process's one maze catalogue (shared with the gateway)."""
        agents = ConfiguredAgentFactory(settings)
        processor = MazeProcessor(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            find_maze=find_maze,
            client_id=settings.kafka_client_id,
            prices=agents.prices,
            endpoints=allowed_endpoints(settings),
        )
        runner = AgentRunner(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            agent_factory=agents,
            client_id=settings.kafka_client_id,
            max_concurrency=settings.max_concurrent_runs,
            redact=agents.redactor,
        )
        return cls(processor, runner, agents)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.processor.run(stop), name="maze processor")
                group.create_task(self.runner.run(stop), name="agent runner")
        finally:
            await self.agents.close()

    async def wait_ready(self) -> None:
        """Until both have partitions assigned and their runs rebuilt."""
        await self.processor.ready.wait()
        await self.runner.ready.wait()
