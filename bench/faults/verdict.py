"""The fault suite's checks and its JSON figures: lost, duplicated, stuck, crashed runs.

Apart from the harness so what counts as a failure is read in one place; it only reads
what the harness, the observer and the archive recorded.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from bench.faults.config import HOSTILE_PREFIX
from bench.faults.harness import Harness
from bench.faults.observer import RunLog


def recovery_summary(values: list[float | None]) -> dict[str, Any]:
    """How fast the stack recovered from one kind of fault (None: not in time)."""
    done = [v for v in values if v is not None]
    return {
        "count": len(values),
        "not_recovered": len(values) - len(done),
        "median_s": round(statistics.median(done), 2) if done else None,
        "max_s": max(done) if done else None,
    }


async def verdict(h: Harness, seconds: float, settle: float | None) -> dict[str, Any]:
    """The JSON figures of the suite, with ``ok`` and the ``failures`` that make it false."""
    obs = h.obs
    runs = {r: obs.runs.get(r, RunLog()) for r in h.acknowledged}
    lost = [r for r, log in runs.items() if not log.started and not obs.rejected[r]]
    stuck = [r for r, log in runs.items() if log.started and not log.finished]
    duplicated = {r: p for r, log in runs.items() if (p := log.problems())}
    counts = await h.archive_counts() or {}
    mismatched = {
        r: {"archive": counts.get(r, (0, 0))[0], "log": obs.events_of([r])}
        for r in h.acknowledged
        if counts.get(r, (0, 0))[0] != obs.events_of([r])
    }
    crashes = [c for s in h.services for c in s.crashes]
    by_kind: dict[str, list[float | None]] = {}
    for fault in h.faults:
        by_kind.setdefault(fault.kind, []).append(fault.recover_s)
    failures = []
    for name, bad in (
        ("lost", lost),
        ("duplicated", duplicated),
        ("stuck", stuck),
        ("crashed", crashes),
        ("archive_mismatch", mismatched),
    ):
        if bad:
            failures.append(f"{name}: {len(bad)}")
    hostile_started = Counter(
        r.rsplit("-", 1)[0][len(HOSTILE_PREFIX) :] for r in obs.hostile_started
    )
    return {
        "size": h.config.size,
        "ok": not failures,
        "failures": failures,
        "seconds": round(seconds, 1),
        "runs": {
            "started": len(h.acknowledged),
            "run_started": sum(log.started for log in runs.values()),
            "finished": sum(log.finished for log in runs.values()),
            # Re-published starts are refused ("already exists") or ignored, never run again.
            "duplicate_starts_rejected": sum(obs.rejected[r] for r in h.acknowledged),
            "lost": lost,
            "duplicated": duplicated,
            "stuck": stuck,
            "events": obs.events_of(h.acknowledged),
            "publish_ack_max_s": round(max(h.publish_seconds, default=0.0), 2),
        },
        "services": {
            "crashed": [
                {"service": c.service, "returncode": c.returncode, "error": c.error}
                for c in crashes
            ],
            "killed": {s.name: s.kills for s in h.services if s.kills},
            "alive_at_end": {s.name: s.alive for s in h.services},
        },
        "hostile": {
            "sent": sum(h.hostile_sent.values()),
            "sent_by_category": dict(h.hostile_sent),
            "refused_by_broker": dict(h.hostile_refused),
            "dead_lettered": sum(obs.dead_letters.values()),
            "dead_lettered_by_source": dict(obs.dead_letters),
            "rejected": sum(n for k, n in obs.rejected.items() if k.startswith(HOSTILE_PREFIX)),
            "rejected_without_key": obs.rejected[""],
            "admitted_runs_by_category": dict(hostile_started),
        },
        "faults": [vars(f) for f in h.faults],
        "stalls": h.stalls,
        "recovery": {kind: recovery_summary(values) for kind, values in by_kind.items()},
        "duplicate_starts_settled_s": settle,
        "archive": {"equals_log": not mismatched, "mismatched": mismatched},
        "gateway": h.gateway,
    }
