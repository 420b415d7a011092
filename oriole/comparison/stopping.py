"""Stopping a batch when its answer is known: the ``sequential`` option and its design.

A batch with ``[sequential]`` compares two of its arms (`oriole.comparison.arms`) with the
always-valid test of `oriole.comparison.sequential` and stops launching runs the first time
the comparison is conclusive. The design, built once from the plan, lists the matched pairs
of planned runs — arm A's and arm B's run at the same maze, start and repetition — in plan
order. The verdict walks them in that order and only as far as the first pair not yet
ended: the order of the pairs is fixed before any run, so finishing order (which may depend
on the outcome: a run that finds the goal early ends early) cannot bias the test. Given the
same ended runs it always says the same, so a scheduler rebuilt after a crash agrees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import Field, field_validator

from oriole.comparison.arms import arms_of_cells, place_of_cell
from oriole.comparison.sequential import Evidence, PairOutcome, first_crossing
from oriole.schema_base import WireModel

Problems = list[tuple[str, str]]


class SequentialOption(WireModel):
    """Stop launching runs once the comparison of two arms is conclusive (docs/batches.md)."""

    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description=(
            "The false-positive rate the test keeps, however often it is looked at: it stops "
            "when the e-value reaches 1/alpha."
        ),
    )
    arms: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description=(
            'The two arms to compare, by name (the varying factor values joined by " · ", '
            "as `oriole compare` names them); default: the batch's two arms."
        ),
    )

    @field_validator("arms")
    @classmethod
    def _distinct(cls, arms: list[str] | None) -> list[str] | None:
        if arms is not None and arms[0] == arms[1]:
            raise ValueError("name two different arms")
        return arms


@dataclass(frozen=True, slots=True)
class SequentialDesign:
    """The matched pairs of a batch's two compared arms, in plan order."""

    alpha: float
    arms: tuple[str, str]
    #: (planned run id of arm A, planned run id of arm B), in plan order.
    pairs: tuple[tuple[str, str], ...]


class EndedRun(Protocol):
    """What the verdict reads of a planned run's last attempt."""

    @property
    def success(self) -> bool: ...

    @property
    def failed(self) -> bool: ...


def sequential_design(
    option: SequentialOption,
    cells: Mapping[str, Mapping[str, Any]],
    order: Sequence[tuple[str, str, int]],
) -> SequentialDesign | Problems:
    """The design of a planned batch (``order``: planned run id, cell, repetition), or every
    problem with its ``sequential`` option, by field."""
    arm_of = arms_of_cells(cells)
    names = list(dict.fromkeys(arm_of[cell] for cell in cells))
    listed = ", ".join(repr(name) for name in names)
    problems: Problems = []
    if option.arms is None:
        if len(names) != 2:
            problems.append(
                (
                    "sequential.arms",
                    f"the batch has {len(names)} arm{'' if len(names) == 1 else 's'} "
                    f"({listed}); the test compares two: name them",
                )
            )
        chosen = tuple(names[:2])
    else:
        chosen = tuple(option.arms)
        for index, name in enumerate(option.arms):
            if name not in names:
                problems.append(
                    (f"sequential.arms[{index}]", f"no arm {name!r}; the arms are {listed}")
                )
    if problems:
        return problems
    arm_a, arm_b = chosen
    halves: dict[tuple[str, str, str, int], str] = {}
    places: dict[tuple[str, str, str], list[str]] = {}
    for cell_id, cell in cells.items():
        if arm_of[cell_id] in chosen:
            places.setdefault((arm_of[cell_id], *place_of_cell(cell)), []).append(cell_id)
    crowded: dict[str, tuple[str, str, list[str]]] = {}
    for (arm, maze, start), cell_ids in places.items():
        if len(cell_ids) > 1:
            crowded.setdefault(arm, (maze, start, cell_ids))
    for arm, (maze, start, cell_ids) in crowded.items():
        problems.append(
            (
                "sequential.arms",
                f"arm {arm!r} has several cells at one maze and start (e.g. "
                f"{', '.join(cell_ids)} at maze {maze}, start {start}), so its runs cannot be "
                "matched one to one; give its agents different labels",
            )
        )
    if problems:
        return problems
    pairs: list[tuple[str, str]] = []
    for run_id, cell_id, repetition in order:
        side = arm_of.get(cell_id)
        if side is None or side not in chosen:
            continue
        maze, start = place_of_cell(cells[cell_id])
        halves[(side, maze, start, repetition)] = run_id
        other = arm_b if side == arm_a else arm_a
        mate = halves.get((other, maze, start, repetition))
        if mate is not None:
            pairs.append((run_id, mate) if side == arm_a else (mate, run_id))
    if not pairs:
        return [("sequential.arms", f"arms {arm_a!r} and {arm_b!r} share no maze and start")]
    return SequentialDesign(option.alpha, (arm_a, arm_b), tuple(pairs))


def verdict(design: SequentialDesign, done: Mapping[str, EndedRun]) -> Evidence:
    """The evidence from the pairs ended so far, up to the first pair still pending."""

    def outcomes() -> Iterator[PairOutcome]:
        for run_a, run_b in design.pairs:
            end_a, end_b = done.get(run_a), done.get(run_b)
            if end_a is None or end_b is None:
                return
            outcome: PairOutcome = None
            if not end_a.failed and not end_b.failed:
                outcome = (end_a.success, end_b.success)
            yield outcome

    return first_crossing(outcomes(), alpha=design.alpha, arms=design.arms)
