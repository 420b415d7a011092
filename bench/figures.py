"""An Oriole figure beside its raw baseline from the same run, and their ratio."""

from __future__ import annotations

from typing import Any


def ratio(figure: float, baseline: float) -> float | None:
    """``figure / baseline`` rounded to 3 places; None when the baseline is zero."""
    return round(figure / baseline, 3) if baseline else None


def compared(figure: float, baseline: float, unit: str) -> dict[str, Any]:
    """One Oriole figure beside its raw building block measured on the same machine."""
    return {"figure": figure, "baseline": baseline, "ratio": ratio(figure, baseline), "unit": unit}
