"""`oriole up` as a user runs it: find the stack with no flags, stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oriole import generators

pytestmark = pytest.mark.slow

DEADLINE = 180.0


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env["ORIOLE_HOME"] = str(home)
    env["ORIOLE_GATEWAY_PORT"] = str(_free_port())
    env["COLUMNS"] = "120"
    return env


def _free_port() -> int:
    """A port nothing listens on now (the gateway of a test's `oriole up` binds it)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(predicate, what: str, process: subprocess.Popen[bytes], log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if process.poll() is not None:
            pytest.fail(
                f"oriole up exited early ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop_up(up: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a service manager sends it; a stack that does not stop is killed."""
    up.send_signal(signal.SIGTERM)
    try:
        up.wait(timeout=60)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait()
        raise


def test_up_then_run_without_flags_then_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    maze = generators.generate("open-field", 30, 20, seed=2, name="field")
    (home / "mazes").mkdir(parents=True)
    maze.save(home / "mazes" / "field.json")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "oriole", "up"], env=_env(home), stdout=out, stderr=out
        )
    stack_file = home / "stack.json"
    try:
        _wait_for(stack_file.exists, "the stack file", up, log)
        stack = json.loads(stack_file.read_text())
        assert stack["broker_kind"] == "tansu"
        assert stack["rdkafka_bootstrap_servers"].startswith("127.0.0.1:")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "oriole",
                "run",
                "--maze",
                "field",
                "--wait",
                "--json",
                "--timeout",
                str(DEADLINE),
            ],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=DEADLINE + 30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["stop_reason"] in {"goal_seen", "max_footsteps", "max_actions"}
        assert summary["footsteps"] >= 1
        rejected = subprocess.run(
            [sys.executable, "-m", "oriole", "run", "--maze", "field", "--start", "0,0"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rejected.returncode == 2
        assert "start: (0,0) is a wall tile in maze field" in rejected.stderr
    finally:
        stop_up(up)
    assert up.returncode == 0, log.read_text()[-3000:]
    assert not stack_file.exists()
    assert "Oriole stopped." in log.read_text()
    assert re.search(rf"Viewer\s+{re.escape(stack['gateway_url'])}/", log.read_text())
    assert stack["pid"] == up.pid
    # The broker was a child of `oriole up`: nothing of it may be left listening.
    port = int(stack["kafka_bootstrap_servers"].rsplit(":", 1)[1])
    import socket

    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_client_commands_explain_when_no_stack_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "mazes").mkdir(parents=True)
    generators.generate("open-field", 10, 10, seed=1, name="f").save(home / "mazes" / "f.json")
    result = subprocess.run(
        [sys.executable, "-m", "oriole", "run", "--maze", "f"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no Oriole stack is running on this machine" in result.stderr
    (home / "stack.json").write_text(
        json.dumps(
            {
                "pid": 999999,
                "kafka_bootstrap_servers": "127.0.0.1:1",
                "broker_kind": "tansu",
                "topic_prefix": "oriole",
                "started_at": "2026-01-01T00:00:00+00:00",
            }
        )
    )
    stale = subprocess.run(
        [sys.executable, "-m", "oriole", "run", "--maze", "f"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stale.returncode == 2
    assert "which is not running" in stale.stderr


def test_up_starts_over_a_stack_file_left_by_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    stale = {
        "pid": 999999,
        "kafka_bootstrap_servers": "127.0.0.1:1",
        "broker_kind": "tansu",
        "topic_prefix": "oriole",
        "started_at": "2026-01-01T00:00:00+00:00",
    }
    (home / "stack.json").write_text(json.dumps(stale))
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "oriole", "up"], env=_env(home), stdout=out, stderr=out
        )

    def ours() -> bool:
        try:
            return bool(json.loads((home / "stack.json").read_text())["pid"] == up.pid)
        except (OSError, ValueError):
            return False

    try:
        _wait_for(ours, "a new stack file", up, log)
    finally:
        stop_up(up)
    assert up.returncode == 0, log.read_text()[-3000:]
