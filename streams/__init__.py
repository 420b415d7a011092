"""Stream processors: the maze processor (single writer of each run's log), the agent runner,
and the worker that hosts both. Plain aiokafka consumer groups; see docs/architecture.md."""
