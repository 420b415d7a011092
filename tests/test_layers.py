"""The import contracts of docs/architecture.md: complete, kept, and able to fail.

CI runs ``lint-imports`` itself; these tests make sure the contract's list of core modules
names every module at the root of ``oriole/`` and that a violation is really reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("oriole", "streams", "projections", "gateway", "providers", "reports")
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return {contract["id"]: contract for contract in contracts}


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    if not Path(LINT_IMPORTS).exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # this tree's packages, not the installed ones
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_module_at_the_root_of_oriole_is_in_the_core_contract() -> None:
    listed = set(_contracts()["pure-core"]["source_modules"])
    at_root = {
        f"oriole.{path.stem}"
        for path in (ROOT / "oriole").glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }
    assert at_root - listed == set(), "add these to the pure-core contract in pyproject.toml"
    assert {m for m in listed if m.count(".") == 1} - at_root - {
        "oriole.agents",
        "oriole.comparison",
        "oriole.llm",
    } == set(), "the contract names modules that no longer exist"


def test_the_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "violation", "reported"),
    [
        ("oriole/rules.py", "import asyncio", "oriole.rules is not allowed to import asyncio"),
        (
            "oriole/run_state.py",
            "import oriole.environment.settings",
            "oriole.run_state is not allowed to import oriole.environment",
        ),
        (
            "streams/worker.py",
            "import oriole.cli.common",
            "streams.worker -> oriole.cli.common",
        ),
    ],
)
def test_a_deliberate_violation_breaks_a_contract(
    tmp_path: Path, module: str, violation: str, reported: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    source = target.read_text(encoding="utf-8")
    marker = "from __future__ import annotations\n"
    assert marker in source
    target.write_text(source.replace(marker, f"{marker}\n{violation}\n", 1), encoding="utf-8")
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert reported in result.stdout
