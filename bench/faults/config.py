"""How big the fault suite is, and the run ids it gives what it sends.

Apart so every part of the suite (harness, hostile records, checks) reads the same sizes
and prefixes, and the CI size sits next to the full one.
"""

from __future__ import annotations

from dataclasses import dataclass

RUN_PREFIX = "fault-run-"
HOSTILE_PREFIX = "hostile-"


@dataclass(frozen=True)
class FaultConfig:
    """How big the suite is; ``full()`` for the benchmark, ``ci()`` for the test."""

    size: str = "full"
    runs: int = 20
    workers: int = 2
    partitions: int = 4
    maze_size: int = 151
    max_footsteps: int = 5000
    worker_kills: int = 8
    projector_kills: int = 3
    pg_stops: int = 2
    pg_freezes: int = 2
    outage_seconds: float = 4.0
    hostile_records: int = 10_000
    huge_bytes: int = 20 << 20
    huge_records: int = 2
    gateway_body_bytes: int = 80 << 20
    #: Events the log must grow by between two faults (so faults land mid-run).
    spacing_events: int = 400
    recovery_timeout: float = 120.0
    deadline_seconds: float = 900.0
    archive_timeout: float = 120.0
    max_restarts: int = 5
    #: Runs through a whole `oriole up` killed with -9 and restarted (0: skip that part).
    up_runs: int = 4
    up_footsteps: int = 1500

    @classmethod
    def full(cls) -> FaultConfig:
        return cls()

    @classmethod
    def ci(cls) -> FaultConfig:
        return cls(
            size="ci",
            runs=3,
            maze_size=101,
            max_footsteps=900,
            worker_kills=2,
            projector_kills=1,
            pg_stops=1,
            pg_freezes=1,
            outage_seconds=2.0,
            hostile_records=300,
            huge_bytes=2 << 20,
            huge_records=1,
            gateway_body_bytes=20 << 20,  # over the gateway's 16 MiB default cap
            spacing_events=150,
            recovery_timeout=60.0,
            deadline_seconds=120.0,
            archive_timeout=45.0,
            max_restarts=3,
            up_runs=2,
            up_footsteps=600,
        )
