"""`oriole batch plan` and the underpowered warning of `oriole batch run`, with no stack.

Both read and check the batch file locally (maze library, price table, endpoints); neither
needs a broker to say how much a batch can detect. The expected figures are worked out by
hand: 3 built-in agents x 4 mazes x 1 start x 5 repetitions = 60 runs, 20 per arm, and
with 3 comparisons h = (2.393980 + 0.841621) * sqrt(2/20) = 1.0232, d = sin(h)/2 = 0.4269
(see tests/test_batch_power.py for the sources).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from oriole.cli import app
from oriole.cli.common import forget_process_state
from oriole.environment.stack_file import NoStackError
from oriole.errors import ValidationError
from tests.support import MAZES_DIR, require_reference

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "batches"
BUILTIN = EXAMPLES / "builtin-agents.toml"

WELL_POWERED = """
name = "two agents, one hundred paired runs each"
agents = ["frontier", "random"]
repetitions = 10

[[mazes]]
generator = "backtracker"
width = 11
height = 11
seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]

[limits]
max_footsteps = 40
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home with no stack file and no broker configured."""
    for name in list(os.environ):
        if name.startswith("ORIOLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    forget_process_state()
    yield tmp_path / "home"
    forget_process_state()


def invoke(*args: str, catch: bool = False) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=catch, env={"COLUMNS": "200"})


def needs_library(batch_file: Path) -> bool:
    mazes = tomllib.loads(batch_file.read_text(encoding="utf-8")).get("mazes", [])
    return any("name" in maze for maze in mazes)


def import_reference_mazes() -> None:
    require_reference()
    imported = invoke("mazes", "import", *map(str, sorted(MAZES_DIR.glob("*.json"))))
    assert imported.exit_code == 0, imported.output


@pytest.mark.parametrize("batch_file", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_plans_with_runs_and_detectable_differences(batch_file: Path) -> None:
    if needs_library(batch_file):
        import_reference_mazes()
    result = invoke("batch", "plan", str(batch_file))
    assert result.exit_code == 0, result.output
    assert " runs" in result.stdout and "smallest detectable difference" in result.stdout
    document = json.loads(invoke("batch", "plan", str(batch_file), "--json").stdout)
    arms = document["arms"]
    assert document["runs"] == sum(arm["runs"] for arm in arms) > 0
    assert len(document["comparisons"]) == len(arms) * (len(arms) - 1) // 2
    assert document["published"] is False


def test_the_builtin_example_in_words() -> None:
    result = invoke("batch", "plan", str(BUILTIN))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "60 runs" in out
    assert "4 places (maze × start) on 4 mazes, 5 repetitions each" in out
    assert "3 comparisons (every pair of arms): alpha 0.05 two-sided (0.0167 each" in out
    for arm in ("frontier", "wall-follower", "random"):
        assert arm in out
    assert out.count("0.43 (50% vs 93%)") == 3
    assert "underpowered: with 20 runs per arm" in result.stderr
    assert "nothing was published" not in result.stderr


def test_json_is_machine_readable_and_follows_the_options() -> None:
    result = invoke("batch", "plan", str(BUILTIN), "--json", "--alpha", "0.1", "--power", "0.9")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["runs"], document["places"], document["repetitions"]) == (60, 4, 5)
    assert [arm["runs"] for arm in document["arms"]] == [20, 20, 20]
    assert (document["alpha"], document["power"], document["baseline_rate"]) == (0.1, 0.9, 0.5)
    first = document["comparisons"][0]
    assert first["paired"] is True
    assert first["alpha_per_comparison"] == pytest.approx(0.1 / 3)
    # h = (z_(1-0.1/6) + z_0.9) * sqrt(2/20) = (2.128045 + 1.281552) * 0.316228 = 1.07821,
    # d = sin(h) / 2 = 0.44056
    assert first["cohens_h"] == pytest.approx(1.07821, abs=1e-4)
    assert first["min_detectable_difference"] == pytest.approx(0.44056, abs=1e-4)
    assert document["underpowered"] is True and "0.44" in document["warning"]


def test_a_batch_too_small_to_detect_anything_says_so(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(
        BUILTIN.read_text(encoding="utf-8").replace("repetitions = 5", "repetitions = 1"),
        encoding="utf-8",
    )
    result = invoke("batch", "plan", str(tiny), "--json")
    document = json.loads(result.stdout)
    assert [c["min_detectable_difference"] for c in document["comparisons"]] == [None] * 3
    assert "cannot detect any difference" in document["warning"]
    assert "none, not even 50% vs 100%" in invoke("batch", "plan", str(tiny)).stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--alpha", "0"), ("--alpha", "1.5"), ("--power", "1"), ("--baseline-rate", "-0.2")],
)
def test_bad_options_are_refused_by_name(option: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"^{option}: must be between 0 and 1"):
        invoke("batch", "plan", str(BUILTIN), option, value)


def test_power_must_be_above_alpha() -> None:
    with pytest.raises(ValidationError, match=r"^--power: must be above --alpha \(0.3\)"):
        invoke("batch", "plan", str(BUILTIN), "--alpha", "0.3", "--power", "0.2")


def test_a_bad_batch_file_is_refused_as_batch_run_refuses_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nagents = ["frontier"]\nmazes = [{ file = "missing.json" }]\n')
    result = invoke("batch", "plan", str(bad))
    assert result.exit_code == 2
    assert "mazes[0].file" in result.stderr and "missing.json" in result.stderr


def test_batch_run_warns_of_an_underpowered_batch_and_still_runs_it() -> None:
    result = invoke("batch", "run", str(BUILTIN), catch=True)
    assert "warning: underpowered: with 20 runs per arm" in result.stderr
    assert "`oriole batch plan FILE` shows every comparison" in result.stderr
    # It went on to publish: with no stack here, that is where it stops.
    assert isinstance(result.exception, NoStackError)


def test_batch_run_of_a_well_powered_batch_does_not_warn(tmp_path: Path) -> None:
    spec = tmp_path / "well.toml"
    spec.write_text(WELL_POWERED, encoding="utf-8")
    planned = json.loads(invoke("batch", "plan", str(spec), "--json").stdout)
    assert planned["underpowered"] is False
    assert planned["comparisons"][0]["min_detectable_difference"] < 0.25
    result = invoke("batch", "run", str(spec), catch=True)
    assert "underpowered" not in result.stderr
    assert isinstance(result.exception, NoStackError)
