"""Run every benchmark (or those named on the command line) and print one JSON document."""

from __future__ import annotations

import importlib
import json
import platform
import sys
from datetime import UTC, datetime

SUITES = ["core", "agents", "backbone", "projections", "gateway"]
#: Suites run only when named: they need something CI does not install.
#: ``faults`` runs a whole stack for minutes (PostgreSQL binaries from Debian's packages).
#: ``archive_scale`` fills a scratch archive to 1M and 5M events (minutes, a few GB).
#: ``pipeline`` (worker, projector and gateway processes end to end with one and two
#: workers, CPU per step by stage) and ``memory`` (a worker's RSS per run, the embedded
#: broker's per event) take several minutes each on a 2-core machine.
OPT_IN = ["llm_smoke", "faults", "archive_scale", "pipeline", "memory"]


def main(argv: list[str]) -> None:
    chosen = argv or SUITES
    unknown = [name for name in chosen if name not in SUITES + OPT_IN]
    if unknown:
        sys.exit(
            f"unknown benchmark suite(s): {', '.join(unknown)}; "
            f"choose from {', '.join(SUITES + OPT_IN)}"
        )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": {},
    }
    failed = []
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        report["results"][name] = result = module.main()
        if isinstance(result, dict) and result.get("ok") is False:  # a suite with checks
            failed.append(name)
    print(json.dumps(report, indent=2))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
