"""The fault suite at CI size: runs survive kill -9, database outages and hostile records.

The same code as ``python -m bench faults`` (see ``bench/faults/``), with a few runs, two
worker kills and a few hundred hostile records, against a stack of real processes.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.faults import FaultConfig, run_faults
from bench.processes import private_postgres_problem

pytestmark = pytest.mark.slow


@pytest.mark.skipif(private_postgres_problem() is not None, reason=str(private_postgres_problem()))
def test_runs_survive_the_faults() -> None:
    figures = asyncio.run(run_faults(FaultConfig.ci()))
    shown = json.dumps(figures, indent=1)
    assert figures["ok"], f"{figures['failures']}\n{shown}"
    assert figures["runs"]["finished"] == figures["runs"]["started"] == FaultConfig.ci().runs
    killed = figures["services"]["killed"]
    assert sum(n for name, n in killed.items() if name.startswith("worker")) >= 2
    assert figures["hostile"]["sent"] >= FaultConfig.ci().hostile_records
    assert figures["archive"]["equals_log"], shown
