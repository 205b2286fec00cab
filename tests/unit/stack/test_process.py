from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from featurestore.stack.process import ManagedProcess, wait_until


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
