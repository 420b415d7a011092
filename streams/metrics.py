"""Prometheus metrics of the stream processors (exposed by `oriole up` and the gateway)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter(
    "oriole_commands_total",
    "Commands handled by the maze processor, by type and outcome.",
    ["type", "outcome"],
)
RUN_EVENTS = Counter(
    "oriole_run_events_written_total", "Run events written to the log, by type.", ["type"]
)
REJECTIONS = Counter("oriole_start_rejections_total", "Experiment-start events rejected.")
DEAD_LETTERS = Counter(
    "oriole_dead_letters_total", "Messages sent to the dead-letter topic.", ["topic"]
)
ACTIVE_RUNS = Gauge("oriole_active_runs", "Runs in progress owned by this process.", ["role"])
INTENT_LATENCY = Histogram(
    "oriole_intent_to_outcome_seconds",
    "From an agent sending an intent to its outcome being decided.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DECISIONS = Counter(
    "oriole_agent_decisions_total", "Decisions made by agent runners, by provider.", ["provider"]
)
AGENT_FAILURES = Counter(
    "oriole_agent_failures_total", "Agents that failed, by error class.", ["error_class"]
)
