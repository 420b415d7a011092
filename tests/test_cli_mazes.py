"""The `oriole mazes` and `oriole schema` commands, run in-process against a temp home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oriole.cli import app
from oriole.cli.common import forget_process_state
from oriole.maze import Maze
from tests.support import MAZES_DIR, require_reference

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ORIOLE_CONFIG_FILE", raising=False)
    forget_process_state()
    yield tmp_path / "home"
    forget_process_state()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_generate_saves_to_the_library_and_is_deterministic(home: Path) -> None:
    code, out = invoke("mazes", "generate", "backtracker", "-w", "21", "-H", "15", "--seed", "4")
    assert code == 0, out
    saved = home / "mazes" / "backtracker-21x15-s4.json"
    maze = Maze.load(saved)
    assert maze.generator is not None and maze.generator.seed == 4
    code, out = invoke(
        "mazes",
        "generate",
        "backtracker",
        "-w",
        "21",
        "--height",
        "15",
        "--seed",
        "4",
        "--out",
        str(home / "again.json"),
    )
    assert code == 0, out
    assert Maze.load(home / "again.json").content_hash == maze.content_hash


def test_generate_with_params_and_bad_params(home: Path) -> None:
    code, out = invoke(
        "mazes", "generate", "open-field", "-p", "wall_fraction=0.2", "--name", "field"
    )
    assert code == 0, out
    assert Maze.load(home / "mazes" / "field.json").generator.params["wall_fraction"] == 0.2  # type: ignore[union-attr]
    with pytest.raises(Exception, match="wall_fraction: must be a number between 0"):
        runner.invoke(
            app,
            ["mazes", "generate", "open-field", "-p", "wall_fraction=2"],
            catch_exceptions=False,
        )


def test_import_list_show_analyze_and_vision(home: Path) -> None:
    require_reference()
    code, out = invoke("mazes", "import", *map(str, sorted(MAZES_DIR.glob("*.json"))))
    assert code == 0, out
    assert out.count("✓") == 12
    code, out = invoke("mazes", "list", "--json")
    assert [row["name"] for row in json.loads(out)][:2] == ["01_sparse_maze", "02_light_maze"]
    code, out = invoke("mazes", "show", "01_sparse_maze", "--start", "2,2", "--path")
    assert code == 0 and out.count("\n") >= 60
    assert "G" in out and "S" in out
    code, out = invoke("mazes", "analyze", "03_medium_maze", "--json")
    data = json.loads(out)
    assert (data["reachable_count"], data["shortest_path_length"], data["steps_to_see_goal"]) == (
        2025,
        112,
        109,
    )
    assert data["start_is_wall"] is True and data["warnings"]
    code, out = invoke("mazes", "vision", "01_sparse_maze", "2", "2")
    assert out.strip() == (
        "(2,2): empty, (2,1): empty, (2,0): wall, (2,3): empty, (2,4): wall, "
        "(3,2): wall, (1,2): empty, (0,2): wall"
    )
    code, out = invoke(
        "mazes", "vision", str(MAZES_DIR / "01_sparse_maze.json"), "53", "53", "--json"
    )
    record = json.loads(out)
    assert record["found_goal"] is True
    assert record["tiles_ordered"][0] == [53, 53, 2]


def test_import_refuses_to_replace_a_different_maze(home: Path, tmp_path: Path) -> None:
    one = Maze.from_grid([[0, 2]], name="same")
    other = Maze.from_grid([[2, 0]], name="same")
    one.save(tmp_path / "one.json")
    other.save(tmp_path / "other.json")
    assert invoke("mazes", "import", str(tmp_path / "one.json"))[0] == 0
    code, out = invoke("mazes", "import", str(tmp_path / "other.json"))
    assert code == 1
    assert "already has a different maze named 'same'" in out
    assert Maze.load(home / "mazes" / "same.json") == one  # untouched
    assert invoke("mazes", "import", "--replace", str(tmp_path / "other.json"))[0] == 0
    assert Maze.load(home / "mazes" / "same.json") == other


def test_import_reports_invalid_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "width": 2, "height": 1, "grid_data": [[0, 0]]}))
    code, out = invoke("mazes", "import", str(bad))
    assert code == 1
    assert "bad.json: grid_data: no goal tile (code 2); a maze needs exactly one" in out


def test_schema_writes_every_schema(tmp_path: Path) -> None:
    code, out = invoke("schema", str(tmp_path / "schemas"))
    assert code == 0, out
    names = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert "experiment-start.schema.json" in names and "run-event.schema.json" in names
    start = json.loads((tmp_path / "schemas" / "experiment-start.schema.json").read_text())
    assert start["title"] == "ExperimentStart"
    assert "agent" in start["required"]
    events = json.loads((tmp_path / "schemas" / "run-event.schema.json").read_text())
    assert set(events["discriminator"]["mapping"]) >= {"run.started", "run.finished"}
    command = json.loads((tmp_path / "schemas" / "run-start.schema.json").read_text())
    assert command["title"] == "StartCommand"
    assert "request" in command["required"]


def test_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "oriole", "mazes", "vision", str(tmp_path / "none.json"), "1", "1"],
        capture_output=True,
        text=True,
        env={"ORIOLE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: maze: no maze file at")
