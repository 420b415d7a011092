"""Arms: the groups of runs a comparison sets against each other.

An arm is one combination of the factors that decide *what* runs (agent, prompt, option
values) — never of the factors that decide *where* it runs (maze, start), which are what
runs of different arms are matched on. By default the factors are those whose values vary
across the runs; a user may name them instead (``--by agent,prompt``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from oriole.errors import ValidationError

#: Joins an arm's factor values into its display name.
ARM_SEPARATOR = " · "
#: Where a run happens: runs are matched on these, arms are never split by them.
PLACE_FACTORS = ("maze", "start")
#: Shown first, in this order; option names follow alphabetically.
_LEADING = ("agent", "endpoint", "prompt")


def factor_text(value: Any) -> str:
    """One factor value as text (``None`` -> ``"-"``; JSON numbers as JSON writes them)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


def cell_factors(cell: Mapping[str, Any]) -> dict[str, str]:
    """A batch cell's description (`oriole.batch_review.describe`) as flat factor texts:
    ``agent``, ``endpoint``, ``prompt``, each option by its name, ``maze`` and ``start``."""
    factors = {
        "agent": factor_text(cell.get("agent")),
        "endpoint": factor_text(cell.get("endpoint")),
        "prompt": factor_text(cell.get("prompt")),
    }
    options = cell.get("options") or {}
    for name in sorted(options):
        factors[name] = factor_text(options[name])
    factors["maze"] = factor_text(cell.get("maze"))
    factors["start"] = factor_text(cell.get("start"))
    return factors


def _ordered(names: Iterable[str]) -> list[str]:
    unique = set(names)
    leading = [name for name in _LEADING if name in unique]
    return leading + sorted(unique - set(leading) - set(PLACE_FACTORS))


def varying_factors(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The factors (other than the place) whose values differ between ``rows``.

    A factor one row lacks counts as ``"-"`` there. With one arm's worth of runs (nothing
    varies) the agent alone names the arm, so a report always has a factor to show.
    """
    names = _ordered(name for row in rows for name in row)
    varying = [name for name in names if len({row.get(name, "-") for row in rows}) > 1]
    return varying or (["agent"] if rows else [])


def check_by(by: Sequence[str], known: Iterable[str]) -> list[str]:
    """``--by`` checked against the factors the runs have; every problem in one error."""
    available = set(known) - set(PLACE_FACTORS)
    wanted = [name.strip() for name in by if name.strip()]
    reasons = []
    places = [name for name in wanted if name in PLACE_FACTORS]
    if places:
        reasons.append(
            f"{', '.join(map(repr, places))}: runs are matched on the maze and start, not "
            "split by them (the report has a per-maze breakdown)"
        )
    unknown = [name for name in wanted if name not in available and name not in PLACE_FACTORS]
    if unknown:
        reasons.append(
            f"no factor {', '.join(map(repr, unknown))}; "
            f"the runs have: {', '.join(_ordered(available)) or 'none'}"
        )
    if reasons:
        raise ValidationError("by", "; ".join(reasons))
    if not wanted:
        raise ValidationError("by", "names no factor")
    return list(dict.fromkeys(wanted))


def arm_name(factors: Mapping[str, str], by: Sequence[str]) -> str:
    """The agent as it is (``frontier``), every other factor as ``name=value``, unset ones
    left out: ``ollama:qwen2.5:7b · prompt=v2 · temperature=0.7``. Unambiguous, since a
    factor's part is absent only when it is unset."""
    parts = [
        factors.get(name, "-") if name == "agent" else f"{name}={factors.get(name, '-')}"
        for name in by
        if factors.get(name, "-") != "-" or name == "agent"
    ]
    return ARM_SEPARATOR.join(parts) or "-"


def arms_of_cells(
    cells: Mapping[str, Mapping[str, Any]], by: Sequence[str] | None = None
) -> dict[str, str]:
    """Cell id -> arm name for a batch's cells (``by`` defaults to the factors that vary)."""
    flat = {cell_id: cell_factors(cell) for cell_id, cell in cells.items()}
    chosen = list(by) if by else varying_factors(list(flat.values()))
    return {cell_id: arm_name(factors, chosen) for cell_id, factors in flat.items()}


def place_of_cell(cell: Mapping[str, Any]) -> tuple[str, str]:
    """(maze, start) of a batch cell: the runs of two arms with the same place (and the same
    repetition, hence the same seed) are a matched pair."""
    factors = cell_factors(cell)
    return factors["maze"], factors["start"]
