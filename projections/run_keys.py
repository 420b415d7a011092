"""Each run's partition key: the time of its ``run.started`` event.

Every row of a run in ``run_events``, ``agent_actions`` and ``model_calls`` carries it
(``run_started_at``), so a run never straddles month partitions and a redelivered event meets
the row it duplicates. The projector keeps the keys of the runs it has seen in a small cache;
for a run it has not seen in this process (a restart, a rebalance, a rebuild) the key is read
back from any archived row of the run, since they all carry it. Only a run with nothing
archived yet takes its key from its ``run.started`` in the batch (or, for a log whose start
never arrived, which Oriole does not write, from its earliest event; that one is not cached).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from oriole.events import RunEvent, RunStarted
from projections.rows import keys_from_events

#: Runs whose key a projector remembers; beyond it the oldest are forgotten (and looked up
#: again if they ever send another event). About 100 bytes each.
CACHE_SIZE = 50_000

#: Any archived row of the run has its key; each partition's primary key index answers.
_LOOKUP = """
    SELECT r.run_id,
           (SELECT e.run_started_at FROM run_events e WHERE e.run_id = r.run_id LIMIT 1)
               AS run_started_at
      FROM unnest($1::text[]) AS r(run_id)"""


class RunKeys:
    """The partition keys of runs, cached per process (a projector keeps one)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._known: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._known)

    async def resolve(self, conn: Any, events: Sequence[RunEvent]) -> dict[str, datetime]:
        """The key of every run of ``events``: cached, archived, or from the events."""
        known = self._known
        keys: dict[str, datetime] = {}
        missing: list[str] = []
        for run_id in dict.fromkeys(e.run_id for e in events):
            key = known.get(run_id)
            if key is None:
                missing.append(run_id)
            else:
                keys[run_id] = key
        if not missing:
            return keys
        archived = {
            r["run_id"]: r["run_started_at"]
            for r in await conn.fetch(_LOOKUP, missing)
            if r["run_started_at"] is not None
        }
        wanted = set(missing) - set(archived)
        implied = keys_from_events(e for e in events if e.run_id in wanted) if wanted else {}
        started = {e.run_id for e in events if isinstance(e, RunStarted) and e.run_id in wanted}
        for run_id in missing:
            key = archived.get(run_id)
            if key is not None or run_id in started:
                key = key if key is not None else implied[run_id]
                self._remember(run_id, key)
            else:
                key = implied[run_id]  # a log without its start: not cached
            keys[run_id] = key
        return keys

    def _remember(self, run_id: str, key: datetime) -> None:
        self._known[run_id] = key
        if len(self._known) > self.size:
            del self._known[next(iter(self._known))]
