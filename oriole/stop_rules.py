"""When a run must end. Evaluated after every action (Oriole checked only between turns).

When several rules fire at once the first in this order wins: the goal (a success is never
hidden behind a limit that was hit by the same step), cancellation, budgets, footsteps,
actions, loops, duration.
"""

from __future__ import annotations

from dataclasses import dataclass

from oriole.events import StopReason
from oriole.experiment import RunLimits


@dataclass(frozen=True, slots=True)
class Progress:
    """The figures the stop rules look at, right after an action."""

    footsteps: int
    actions: int
    tokens: int
    cost_usd: float
    goal_seen: bool
    goal_reached: bool
    visits_here: int
    elapsed_seconds: float
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class Stop:
    reason: StopReason
    detail: str


def check(progress: Progress, limits: RunLimits) -> Stop | None:
    """The rule that ends the run now, or ``None`` to go on."""
    if limits.goal_rule == "seen" and (progress.goal_seen or progress.goal_reached):
        return Stop(StopReason.GOAL_SEEN, "the goal is in view")
    if limits.goal_rule == "reached" and progress.goal_reached:
        return Stop(StopReason.GOAL_REACHED, "the agent stands on the goal")
    if progress.cancel_requested:
        return Stop(StopReason.CANCELLED, "cancelled on request")
    if limits.max_tokens is not None and progress.tokens >= limits.max_tokens:
        return Stop(
            StopReason.BUDGET,
            f"token budget used: {progress.tokens} tokens of max_tokens {limits.max_tokens}",
        )
    if limits.max_cost_usd is not None and progress.cost_usd >= limits.max_cost_usd:
        return Stop(
            StopReason.BUDGET,
            f"cost budget used: ${progress.cost_usd:.6f} of max_cost_usd ${limits.max_cost_usd}",
        )
    if limits.max_footsteps is not None and progress.footsteps >= limits.max_footsteps:
        return Stop(StopReason.MAX_FOOTSTEPS, f"{progress.footsteps} footsteps made")
    if limits.max_actions is not None and progress.actions >= limits.max_actions:
        return Stop(StopReason.MAX_ACTIONS, f"{progress.actions} actions taken")
    if limits.loop_revisit_limit is not None and progress.visits_here >= limits.loop_revisit_limit:
        return Stop(
            StopReason.LOOP_DETECTED,
            f"the agent stood on the same tile {progress.visits_here} times",
        )
    return check_deadline(progress.elapsed_seconds, limits)


def check_deadline(elapsed_seconds: float, limits: RunLimits) -> Stop | None:
    """The duration rule alone: what the lifecycle timer checks while the agent is silent."""
    limit = limits.max_duration_seconds
    if limit is not None and elapsed_seconds >= limit:
        return Stop(
            StopReason.MAX_DURATION,
            f"ran {elapsed_seconds:.1f} s of max_duration_seconds {limit:g}",
        )
    return None
