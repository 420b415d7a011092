"""Issue 17, the first hour of a new user at the command line: tile names in `mazes analyze`,
`-h` as help everywhere, plain progress lines in a log, and the README's set-up notes.

Each test is the reproduction of a trap a newcomer fell into; it fails if the trap returns.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from oriole.cli import app, run_display
from oriole.cli.common import forget_process_state
from oriole.environment.settings import load_settings
from oriole.events import RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.schema_base import Point
from tests.support import maze_from_text

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"

# (2,2) is a wall; (1,1) is open; the goal is at (3,3).
SEALED = """
#####
#...#
#.#.#
#..G#
#####
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    for name in ("ORIOLE_CONFIG_FILE", "ORIOLE_GATEWAY_PORT"):
        monkeypatch.delenv(name, raising=False)
    forget_process_state()
    yield tmp_path / "home"
    forget_process_state()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.output


# --- `oriole mazes analyze`: tile names, not codes ------------------------------------------


@pytest.mark.parametrize(("start", "name"), [("2,2", "wall"), ("1,1", "empty"), ("3,3", "goal")])
def test_analyze_names_the_start_tile(tmp_path: Path, start: str, name: str) -> None:
    maze_file = tmp_path / "sealed.json"
    maze_from_text(SEALED, "sealed").save(maze_file)
    code, out = invoke("mazes", "analyze", str(maze_file), "--start", start)
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if "start tile" in line]
    cells = [cell.strip() for cell in re.split(r"[│|]", row) if cell.strip()]
    assert cells == ["start tile", name]
    # --json keeps the code: it is the maze format's, for programs.
    code, out = invoke("mazes", "analyze", str(maze_file), "--start", start, "--json")
    assert json.loads(out)["start_tile"] == {"empty": 0, "wall": 1, "goal": 2}[name]


# --- `-h` is help on every command and group ------------------------------------------------


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every group and command of the CLI, as the words that name it."""
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


def all_paths() -> list[tuple[str, ...]]:
    return list(command_paths(typer.main.get_command(app)))


def test_the_walk_reaches_every_group_and_the_clashing_command() -> None:
    paths = all_paths()
    for expected in [(), ("mazes",), ("mazes", "generate"), ("db", "url"), ("batch", "run")]:
        assert expected in paths


@pytest.mark.parametrize("path", all_paths(), ids=lambda p: " ".join(p) or "oriole")
def test_dash_h_is_help_everywhere(path: tuple[str, ...]) -> None:
    code, short = invoke(*path, "-h")
    assert code == 0, short
    assert "Usage:" in short
    assert invoke(*path, "--help") == (0, short)


def test_no_option_takes_dash_h_and_height_has_dash_capital_h(home: Path) -> None:
    def options(command: Any) -> Iterator[tuple[str, list[str]]]:
        for param in getattr(command, "params", []):
            yield command.name, [*param.opts, *param.secondary_opts]
        for sub in getattr(command, "commands", {}).values():
            yield from options(sub)

    clashes = [
        name
        for name, opts in options(typer.main.get_command(app))
        if "-h" in opts and "--help" not in opts
    ]
    assert clashes == []
    code, out = invoke("mazes", "generate", "open-field", "-w", "9", "-H", "7", "--name", "f")
    assert code == 0, out
    assert "f 9x7" in out


# --- `oriole run --wait` into a file: whole lines -------------------------------------------


def played_run(limits: RunLimits) -> tuple[ExperimentStart, list[RunEvent]]:
    """A real run's events (the rules, in memory): to and fro along a corridor, ten tiles
    each way (every action a footstep), or straight to the goal when nothing else ends it."""
    maze = maze_from_text("#" * 24 + "\n#" + "." * 21 + "G#\n" + "#" * 24, "corridor")
    request = ExperimentStart(
        run_id="run-a-rather-long-identifier-for-a-log-line",
        maze=MazeData.from_maze(maze),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model="random"),
        limits=limits,
    )
    run = LocalRun(
        request, maze, clock=ManualClock(datetime(2026, 11, 30, tzinfo=UTC)), new_id=counting_ids()
    )
    to_and_fro = limits.max_footsteps is not None or limits.max_actions is not None
    while not run.state.is_finished:
        back = to_and_fro and (run.state.tally.footsteps // 10) % 2 == 1
        run.act("move_west" if back else "move_east")
    return request, run.events


def progress_in_a_file(
    monkeypatch: pytest.MonkeyPatch, limits: RunLimits
) -> tuple[list[RunEvent], str]:
    """What `oriole run --wait` writes when its output is a file: not a terminal, 40 columns."""
    out = io.StringIO()
    log = Console(file=out, width=40)
    assert not log.is_terminal
    monkeypatch.setattr(run_display, "console", log)
    request, events = played_run(limits)
    with run_display.run_progress(request) as on_event:
        for event in events:
            on_event(event)
    return events, out.getvalue()


def test_progress_into_a_file_is_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    events, text = progress_in_a_file(monkeypatch, RunLimits(max_footsteps=40, goal_rule="reached"))
    assert "…" not in text and "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    run_id = "run-a-rather-long-identifier-for-a-log-line"
    assert all(line.startswith(run_id + " ") for line in lines), lines
    assert lines[0].startswith(f"{run_id} started at (1,1), up to 40 footsteps")
    # One line per tenth of the limit, each with its complete total, then the end.
    steps = [int(m.group(1)) for line in lines if (m := re.search(r" (\d+)/40 footsteps", line))]
    assert steps[:-1] == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    assert re.match(rf"{run_id} ended \(max_footsteps\): 40/40 footsteps · \d+ actions", lines[-1])
    assert len(lines) == 12 < len(events)


def test_progress_against_an_action_limit_counts_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = RunLimits(max_actions=20, goal_rule="reached")
    assert limits.max_footsteps is None
    _, text = progress_in_a_file(monkeypatch, limits)
    lines = text.splitlines()
    assert "up to 20 actions" in lines[0]
    assert [m.group(1) for line in lines if (m := re.search(r" (\d+)/20 actions", line))] == [
        "2", "4", "6", "8", "10", "12", "14", "16", "18", "20", "20",
    ]  # fmt: skip
    assert not re.search(r"\d+/\d+ footsteps", text)


def test_progress_without_any_limit_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = RunLimits(max_footsteps=None, max_actions=None, goal_rule="reached")
    _, text = progress_in_a_file(monkeypatch, limits)
    lines = text.splitlines()
    assert "no footstep or action limit" in lines[0]
    assert re.search(r"ended \(goal_reached\): 21 footsteps · 21 actions", lines[-1]), lines
    assert "/" not in text and "None" not in text


def test_a_terminal_still_gets_the_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(run_display, "console", Console(file=out, width=200, force_terminal=True))
    request, events = played_run(RunLimits(max_footsteps=40, goal_rule="reached"))
    with run_display.run_progress(request) as on_event:
        for event in events:
            on_event(event)
    assert "━" in out.getvalue() and "40/40" in out.getvalue()
    assert " started at " not in out.getvalue()


# --- README set-up: the viewer's port, Node's websocket ------------------------------------


def set_up_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## Set up", 1)[1].split("\n## ", 1)[0]


def test_set_up_says_how_to_change_the_viewer_port(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = set_up_section()
    env_example = re.search(r"`ORIOLE_GATEWAY_PORT=(\d+) oriole up`", section)
    toml_example = re.search(r"`(gateway_port = (\d+))` in `~/\.oriole/config\.toml`", section)
    assert env_example and toml_example
    # What the README names is what Oriole reads, both ways.
    monkeypatch.setenv("ORIOLE_GATEWAY_PORT", env_example.group(1))
    assert load_settings().gateway_port == int(env_example.group(1))
    monkeypatch.delenv("ORIOLE_GATEWAY_PORT")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(toml_example.group(1) + "\n", encoding="utf-8")
    assert load_settings().gateway_port == int(toml_example.group(2))


def readme_node_client() -> str:
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", set_up_section(), re.S)
    (command,) = [block for block in blocks if "WebSocket" in block]
    assert command.startswith("node --experimental-websocket -e ")
    return command


def test_the_readme_node_client_runs_as_shown(tmp_path: Path) -> None:
    """The README's command, as written but for the address, follows a (stand-in) feed."""
    command = readme_node_client()
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    from websockets.asyncio.server import serve

    frames = [
        {"kind": "event", "event": {"type": "run.started", "seq": 1}},
        {"kind": "caught_up", "seq": 1},
        {"kind": "finished", "seq": 1},
    ]
    ready = threading.Event()
    stop: dict[str, Any] = {}

    async def feed(ws: Any) -> None:
        for frame in frames:
            await ws.send(json.dumps(frame))
        await ws.close()

    async def server() -> None:
        async with serve(feed, "127.0.0.1", 0) as srv:
            stop["port"] = srv.sockets[0].getsockname()[1]
            stop["done"] = asyncio.get_running_loop().create_future()
            stop["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop["done"]

    thread = threading.Thread(target=lambda: asyncio.run(server()), daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        script = command.replace("127.0.0.1:8080", f"127.0.0.1:{stop['port']}")
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n") == ["event run.started", "caught_up ", "finished ", ""]
    finally:
        if "loop" in stop:
            stop["loop"].call_soon_threadsafe(stop["done"].set_result, None)
        thread.join(10)


def test_node_20_needs_the_flag_the_readme_shows() -> None:
    readme_node_client()
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    if not version.stdout.startswith("v20."):
        pytest.skip(f"the flag matters on Node 20; this is {version.stdout.strip()}")
    bare = subprocess.run(
        [node, "-e", "console.log(typeof WebSocket)"], capture_output=True, text=True, check=True
    )
    flagged = subprocess.run(
        [node, "--experimental-websocket", "-e", "console.log(typeof WebSocket)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (bare.stdout.strip(), flagged.stdout.strip()) == ("undefined", "function")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("mazes", "generate", "--bogus"), "No such option: --bogus"),
        (("mazes", "generate", "backtracker", "-H"), "Option '-H' requires an argument"),
        (("no-such-command",), "No such command"),
    ],
)
def test_a_usage_error_is_one_message_and_exit_2(args: tuple[str, ...], said: str) -> None:
    """Typer 0.24+ raises its own copy of click's errors: still the usage line, never a
    traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "oriole", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert said in done.stderr and "Traceback" not in done.stderr
