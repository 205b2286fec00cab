"""The supervisor daemon of ``stack up`` starts a SIGKILLed Redis again and counts it.

A stack of its own: its own data folder (PID files, wanted marks, the supervisor's records) and
a Redis on a free port, so the shared stack is neither watched nor touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.stack import Stack
from featurestore.stack.process import wait_until
from featurestore.stack.supervisor import read_records
from tests.own_stack import own_stack
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.mostly_waits]


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own whose Redis and supervisor the tests start."""
    env = {
        "FEATURESTORE_REDIS__PORT": str(free_port()),
        "FEATURESTORE_SUPERVISOR__INITIAL_BACKOFF_S": "0.5",
        "FEATURESTORE_SUPERVISOR__POLL_INTERVAL_S": "0.2",
    }
    with own_stack(tmp_path / "stack", env, [], stop=["supervisor", "redis"]) as stack:
        yield stack


def _kill(stack: Stack) -> int:
    pid = stack.redis.process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def _restarted(stack: Stack, old_pid: int, restarts: int) -> bool:
    record = read_records(stack.supervisor.state_file).get("redis")
    pid = stack.redis.process.pid()
    return (
        record is not None
        and record.restarts == restarts
        and pid not in (None, old_pid)
        and stack.redis.healthy()
    )


def _status_output(settings: Settings) -> str:
    command = [sys.executable, "-m", "featurestore.cli", "stack", "status"]
    env = {**os.environ, **settings_env(settings)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    return done.stdout


def test_a_sigkilled_server_is_started_again_and_counted(supervised: Stack) -> None:
    stack = supervised
    assert stack.up(["redis"]).started == ["redis"]
    assert stack.supervise().started == ["supervisor"]
    assert stack.supervise().already_running == ["supervisor"], "one supervisor per stack"

    first = _kill(stack)
    assert wait_until(lambda: _restarted(stack, first, 1), timeout=30), (
        stack.supervisor.process.log_tail()
    )
    record = read_records(stack.supervisor.state_file)["redis"]
    assert record.last_exit is not None
    assert record.last_exit.startswith("exited (status unknown"), "this test process started it"

    # Now the supervisor's own child: it knows how it ended.
    second = _kill(stack)
    assert wait_until(lambda: _restarted(stack, second, 2), timeout=30), (
        stack.supervisor.process.log_tail()
    )
    record = read_records(stack.supervisor.state_file)["redis"]
    assert record.last_exit is not None and record.last_exit.startswith("killed by SIGKILL")
    assert not record.crash_loop

    (redis,) = [s for s in stack.status() if s.name == "redis"]
    assert redis.healthy
    assert redis.restart is not None and redis.restart.restarts == 2
    assert "restarts 2; last exit" in _status_output(stack.settings)


def test_a_server_stopped_on_purpose_stays_down_and_down_stops_the_supervisor_first(
    supervised: Stack,
) -> None:
    stack = supervised
    stack.up(["redis"])
    stack.supervise()
    assert stack.down(["redis"]) == ["redis"]
    # Several backoffs and looks of the supervisor later, it is still down.
    assert not wait_until(lambda: stack.redis.process.pid() is not None, timeout=3)
    supervisor_pid = stack.supervisor.process.pid()
    assert supervisor_pid is not None, "the supervisor itself goes on"

    stack.up(["redis"])
    redis_pid = stack.redis.process.pid()
    assert redis_pid is not None
    assert stack.down() == ["supervisor", "redis"]
    assert not psutil.pid_exists(supervisor_pid) or (
        psutil.Process(supervisor_pid).status() == psutil.STATUS_ZOMBIE
    )
    assert not wait_until(lambda: stack.redis.process.pid() is not None, timeout=2)
