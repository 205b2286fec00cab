from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from featurestore.stack.process import ManagedProcess
from featurestore.stack.process import command_line
from featurestore.stack.process import wait_until


def _sleeper(tmp_path: Path, marker: str) -> ManagedProcess:
    return ManagedProcess("sleeper", tmp_path, marker)


def test_start_records_pid_and_stop_ends_it(tmp_path: Path) -> None:
    marker = f"import time; time.sleep(60)  # {tmp_path.name}"
    proc = _sleeper(tmp_path, marker)
    pid = proc.start([sys.executable, "-c", marker])
    assert proc.pid() == pid
    assert proc.pid_file.read_text().strip() == str(pid)
    assert proc.stop(timeout=5) is True
    assert proc.pid() is None
    assert not proc.pid_file.exists()
    assert proc.stop() is False


def test_a_pid_file_naming_someone_else_is_stale(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        proc = _sleeper(tmp_path, "a-marker-that-is-not-in-that-command-line")
        proc.pid_file.write_text(f"{other.pid}\n")
        assert proc.pid() is None, "a process without our marker is never ours"
        assert not proc.pid_file.exists()
        assert proc.stop() is False
        assert other.poll() is None, "stop must not touch a process that is not ours"
    finally:
        other.kill()
        other.wait()


def test_process_that_dies_is_seen_as_stopped(tmp_path: Path) -> None:
    marker = f"import sys; sys.stderr.write('boom'); raise SystemExit(3)  # {tmp_path.name}"
    proc = _sleeper(tmp_path, marker)
    proc.start([sys.executable, "-c", marker])
    assert wait_until(proc.exited_early, timeout=10)
    assert "boom" in proc.log_tail(), "the log keeps what the process said before it died"


def test_wait_until_gives_up() -> None:
    assert wait_until(lambda: False, timeout=0.3, interval=0.05) is False


def test_record_exit_tells_success_from_a_crash(tmp_path: Path) -> None:
    ok = ManagedProcess("ok", tmp_path, "exit-marker-ok")
    ok.start([sys.executable, "-c", "print('exit-marker-ok')"], record_exit=True)
    assert wait_until(lambda: ok.exit_status() is not None, timeout=10)
    assert ok.exit_status() == 0
    assert "exit-marker-ok" in ok.log_tail()
    assert wait_until(ok.exited_early, timeout=10)  # and seen gone (reaped, not a zombie)

    bad = ManagedProcess("bad", tmp_path, "exit-marker-bad")
    bad.start([sys.executable, "-c", "raise SystemExit(4)  # exit-marker-bad"], record_exit=True)
    assert wait_until(lambda: bad.exit_status() is not None, timeout=10)
    assert bad.exit_status() == 4
    assert wait_until(bad.exited_early, timeout=10)


def test_stop_ends_the_children_too(tmp_path: Path) -> None:
    marker = f"parent-with-child-{tmp_path.name}"
    script = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"print(c.pid, flush=True); time.sleep(60)  # {marker}"
    )
    proc = ManagedProcess("family", tmp_path, marker)
    proc.start([sys.executable, "-c", script])
    assert wait_until(lambda: proc.log_tail().strip().isdigit(), timeout=10)
    child = int(proc.log_tail().strip())
    assert proc.stop(timeout=5)
    assert wait_until(lambda: not _alive(child), timeout=5), "the child must not outlive stop"


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_process_this_object_started_is_ours_before_its_command_line_says_so(
    tmp_path: Path,
) -> None:
    proc = ManagedProcess("early", tmp_path, "a-marker-the-command-line-never-shows")
    pid = proc.start([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert proc.pid() == pid, "a start must not be mistaken for a stale PID file"
        assert not proc.exited_early()
    finally:
        assert proc.stop(timeout=5)
    assert proc.pid() is None


_THREADED = (
    "import threading, time\n"
    "for _ in range(64): threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(100)\n"
)


def test_a_killed_child_with_threads_is_told_killed_though_it_shows_as_a_zombie_first(
    tmp_path: Path,
) -> None:
    """Its main thread is a zombie before the other threads exit, and waitpid then says nothing.

    Measured on this machine: 7 of 30 such children were seen that way, so ten in a row all
    told right fails with the status unknown most times when the reason does not wait.
    """
    process = ManagedProcess("threaded", tmp_path, marker="threading")
    for _ in range(10):
        process.start([sys.executable, "-c", _THREADED])
        assert wait_until(lambda: "ready" in process.log_tail(), timeout=30)
        pid = process.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: process.pid() is None, timeout=10, interval=0.0005)
        assert process.exit_reason().startswith("killed by SIGKILL")
        process.log_file.unlink()


class _ExecInFlight:
    """A process caught inside ``execve``: its command line reads empty ``empty`` times first."""

    def __init__(self, command: list[str], empty: int) -> None:
        self.command, self.empty, self.reads = command, empty, 0

    def __call__(self, pid: int) -> _ExecInFlight:
        return self

    def status(self) -> str:
        return psutil.STATUS_RUNNING

    def cmdline(self) -> list[str]:
        self.reads += 1
        return [] if self.reads <= self.empty else self.command


def test_a_process_caught_in_its_exec_is_not_taken_for_someone_elses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process's object (the supervisor's, `stack status`'s) reads the PID file the
    # moment after Popen returned, before the kernel shows the new program's arguments.
    marker = f"sleep-marker-{tmp_path.name}"
    started = ManagedProcess("exec", tmp_path, marker)
    pid = started.start([sys.executable, "-c", f"import time; time.sleep(30)  # {marker}"])
    try:
        caught = _ExecInFlight([sys.executable, "-c", f"# {marker}"], empty=3)
        monkeypatch.setattr(psutil, "Process", caught)
        other = ManagedProcess("exec", tmp_path, marker)
        assert other.pid() == pid, "an empty command line is an exec in flight, not a stranger"
        assert caught.reads == 4 and started.pid_file.exists()
        monkeypatch.undo()
    finally:
        assert started.stop(timeout=5)


def test_command_line_gives_up_on_one_that_stays_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "Process", _ExecInFlight([], empty=10**9))
    assert command_line(os.getpid(), exec_wait_s=0.05) == []
