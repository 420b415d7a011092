"""Fault suite: real runs through a real stack while its processes are killed and fed junk.

The stack runs as separate processes, as in production: the embedded Tansu broker, a private
PostgreSQL cluster (see ``bench/processes.py``), N ``oriole worker``, one ``oriole projector``
and one ``oriole gateway``. While deterministic built-in agents play long runs, the suite
kill -9s workers and the projector (and restarts them), stops and freezes PostgreSQL, floods
every input topic with malformed and hostile records, and attacks the gateway. Then it waits
for every run to end and checks the outcome from the topics and the archive:

* lost: a start acknowledged by the broker with neither ``run.started`` nor a rejection;
* duplicated: a repeated seq or event id, or a second ``run.started``/``run.finished``;
* stuck: not finished by the deadline; crashed: a service that exited by itself, non-zero;
* archive: for every run, the rows in ``run_events`` equal the events in the log.

``python -m bench faults`` runs the full size (``BENCH_FAULTS_SIZE=ci`` the CI size,
``BENCH_FAULTS_LOGS=DIR`` keeps the services' logs);
``tests/test_faults.py`` runs the CI size. The JSON figures carry ``ok`` and ``failures``.

The package, one concept a module: ``config`` (sizes), ``harness`` (the stack and the faults
done to it), ``observer`` (what the stack wrote, from its topics), ``archive`` (what it
archived), ``hostile`` (junk records and the flood), ``gateway_attack``, ``up_kill`` (a whole
`oriole up` killed), ``verdict`` (the checks and the JSON figures), ``suite`` (the order of
it all); process control is in ``bench/processes.py``.
"""

from __future__ import annotations

from bench.faults.config import FaultConfig
from bench.faults.suite import main, run_faults

__all__ = ["FaultConfig", "main", "run_faults"]
