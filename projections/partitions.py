"""Month partitions of the archive (``run_events``) and the big projections.

Migration 7 partitions ``run_events``, ``agent_actions`` and ``model_calls`` by the month
their run started (``run_started_at``), with a DEFAULT partition that catches any month
without its own, so an insert never fails for want of a partition. Partitions for the
current and the next month are made ahead: at every start-up (``migrate``) and by the
projector when the month turns. Creating one is DDL, which only the
tables' owner may do: a process connected as ``oriole_writer`` skips it, and the next start
of a process connected as the owner (``oriole db migrate``) makes the partition, moving the
rows the DEFAULT partition caught meanwhile.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

log = logging.getLogger("oriole.partitions")

#: The partitioned tables, all keyed by ``run_started_at``.
PARTITIONED_TABLES = ("run_events", "agent_actions", "model_calls")
_MONTH_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<year>\d{4})_(?P<month>\d{2})$")

_IS_OWNER = """
    SELECT to_regproc('oriole_ensure_partitions') IS NOT NULL
       AND pg_has_role(current_user, c.relowner, 'USAGE')
      FROM pg_class c WHERE c.oid = to_regclass('run_events')"""
_ENSURE = "SELECT oriole_ensure_partitions($1::date, $2::date) AS made"
_PARTITIONS = """
    SELECT p.relname AS parent, c.relname AS name,
           pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
           pg_total_relation_size(c.oid) AS bytes
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
     WHERE p.relname = ANY($1::text[]) AND p.relkind = 'p'
     ORDER BY p.relname, c.relname"""


def month_of(moment: datetime) -> date:
    """The first day of ``moment``'s UTC month."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_start(month: date) -> datetime:
    """Midnight UTC on the first of ``month``: a partition's lower bound."""
    return datetime(month.year, month.month, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of a partitioned table; ``month`` is None for the DEFAULT one."""

    table: str
    name: str
    month: date | None
    #: Its size, indexes and TOAST included.
    bytes: int

    @property
    def upper(self) -> datetime | None:
        """The exclusive upper bound of its run start times (None: DEFAULT)."""
        return None if self.month is None else month_start(next_month(self.month))


async def partitions(conn: Any) -> list[Partition]:
    """Every partition of the partitioned tables (month ones named ``<table>_pYYYY_MM``)."""
    found: list[Partition] = []
    for row in await conn.fetch(_PARTITIONS, list(PARTITIONED_TABLES)):
        month: date | None = None
        match = _MONTH_NAME.match(row["name"])
        if row["is_default"]:
            pass
        elif match is not None and match["table"] == row["parent"]:
            month = date(int(match["year"]), int(match["month"]), 1)
        else:
            continue  # made by hand: not ours to drop
        found.append(Partition(row["parent"], row["name"], month, row["bytes"]))
    return found


async def may_create_partitions(conn: Any) -> bool:
    """Whether this connection's user owns the partitioned tables (DDL needs it)."""
    return bool(await conn.fetchval(_IS_OWNER))


async def ensure_partitions(conn: Any, now: datetime | None = None, ahead: int = 1) -> list[str]:
    """Make the month partitions from ``now``'s month to ``ahead`` months later, when
    missing; the names made. Nothing (and no error) for a user that may not.

    Call it under the migration lock (:func:`projections.migrate.prepare_partitions`), so
    that processes starting together do not race.
    """
    if not await may_create_partitions(conn):
        return []
    first = month_of(now or datetime.now(UTC))
    last = first
    for _ in range(ahead):
        last = next_month(last)
    made = [row["made"] for row in await conn.fetch(_ENSURE, first, last)]
    for name in made:
        log.info("created partition %s", name)
    return made
