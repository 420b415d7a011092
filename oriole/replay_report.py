"""What replay verification found: each `Difference` and the `VerifyReport` of one run.

Kept apart from the walk (:mod:`oriole.replay`) so the CLI and the benchmarks can read and
render a report without knowing how it was derived. Pure data and formatting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Marks a value (or a whole event) that one side has and the other has not.
MISSING = "<missing>"

#: Longest value shown by `Difference.describe`; the full value stays in `to_dict`.
_SHOW_CHARS = 200


@dataclass(frozen=True, slots=True)
class Difference:
    """One leaf where the recorded log and the re-derived one disagree."""

    seq: int
    event_type: str
    path: str
    recorded: Any
    derived: Any

    def describe(self) -> str:
        """One line a person can read without the log at hand."""
        return (
            f"seq {self.seq} {self.event_type} {self.path}: "
            f"recorded {_show(self.recorded)}, derived {_show(self.derived)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_type": self.event_type,
            "path": self.path,
            "recorded": self.recorded,
            "derived": self.derived,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify_run`: every difference, in log order."""

    run_id: str
    events: int
    differences: tuple[Difference, ...]
    #: The recorded log has its terminal event; without one the run is still going.
    finished: bool = False

    @property
    def ok(self) -> bool:
        return not self.differences

    def render(self, limit: int = 50) -> str:
        """A short human-readable report; at most ``limit`` differences are listed."""
        state = "" if self.finished else " (run not finished)"
        if self.ok:
            return (
                f"run {self.run_id}: {counted(self.events, 'event')} re-derived, identical{state}"
            )
        count = len(self.differences)
        lines = [
            f"run {self.run_id}: {counted(count, 'difference')} "
            f"in {counted(self.events, 'event')} checked{state}"
        ]
        shown = self.differences[: max(0, limit)]
        lines += [f"  {difference.describe()}" for difference in shown]
        if count > len(shown):
            lines.append(f"  ... and {count - len(shown)} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (for ``--json``)."""
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "events": self.events,
            "finished": self.finished,
            "differences": [difference.to_dict() for difference in self.differences],
        }


def _show(value: Any) -> str:
    text = MISSING if value == MISSING else repr(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 3] + "..."


def counted(number: int, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
