"""Errors raised by the pure core.

Every error names the offending field and the reason, so that a CLI, an HTTP endpoint or a
rejection event can show it to the user unchanged.
"""

from __future__ import annotations


class OrioleError(Exception):
    """Base class of every error Oriole raises on purpose."""


class ValidationError(OrioleError, ValueError):
    """Bad input: ``field`` says where, ``reason`` says what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class MazeError(ValidationError):
    """A maze document or grid that cannot be used."""


class RuleError(ValidationError):
    """An intent or event that the game rules cannot apply to the current run state."""
