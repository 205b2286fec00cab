"""Background server processes with PID files, started and stopped by PID only.

A process is ours when its PID file names a live process whose command line still holds the
marker we started it with; anything else on the machine is never touched.

Beside the PID file each process has a *wanted* mark, set by every start and removed before
every stop, and the record of the command it was started with: the supervisor
(``supervisor.py``) starts again, with that same command, a process that is wanted and dead,
and never one that was stopped on purpose. :meth:`ManagedProcess.exclusive` is held around
"is it running? then start it", so that the supervisor and a ``stack up`` never start one
server twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import psutil

__all__ = ["ManagedProcess", "command_line", "recorded_processes", "stop_group", "wait_until"]

_REAP_WAIT_S = 2.0
"""How long :meth:`ManagedProcess.exit_reason` waits for a dead child's threads to exit."""


@dataclass
class ManagedProcess:
    """One server process of the local stack."""

    name: str
    """Short name, used for the PID and log files."""
    run_dir: Path
    """Where the PID file and the log live."""
    marker: str
    """A string that must appear in the process's command line for it to count as ours."""
    launched: int | None = field(default=None, init=False)
    """The PID this object started itself: ours by construction, whatever its command line."""
    child: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    """That process, as our child: reaped by :meth:`pid`, its exit status told by
    :meth:`exit_reason`."""

    @property
    def pid_file(self) -> Path:
        """The PID file."""
        return self.run_dir / f"{self.name}.pid"

    @property
    def exit_file(self) -> Path:
        """Where a process started with ``record_exit`` leaves its exit status."""
        return self.run_dir / f"{self.name}.exit"

    @property
    def log_file(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.run_dir / f"{self.name}.log"

    @property
    def wanted_file(self) -> Path:
        """Present from a start until a stop on purpose: the supervisor keeps the process up."""
        return self.run_dir / f"{self.name}.wanted"

    @property
    def command_file(self) -> Path:
        """The command of the last start, which the supervisor runs again (no environment)."""
        return self.run_dir / f"{self.name}.command.json"

    def wanted(self) -> bool:
        """Whether the process was started and not stopped on purpose since."""
        return self.wanted_file.exists()

    def mark_wanted(self) -> None:
        """Ask the supervisor to keep a process up that was found running (started earlier)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.wanted_file.touch()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the process's lock (a ``flock`` between processes; not re-entrant)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / f"{self.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def pid(self) -> int | None:
        """The PID of our live process, or None (a stale PID file is removed)."""
        if self.child is not None:
            self.child.poll()  # reap our own dead child, or it lingers as a zombie
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            ours = False
        elif pid == self.launched:
            ours = True
        else:
            try:
                ours = self.marker in " ".join(command_line(pid))
            except psutil.NoSuchProcess:
                ours = False
            except psutil.AccessDenied:
                # Not readable, so not provably someone else's; never signalled either (stop
                # needs it to be ours), but the PID file is kept.
                return None
        if not ours:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        record_exit: bool = False,
    ) -> int:
        """Start the process detached from this one, and record its PID.

        Args:
            argv: the command line.
            env: the environment (this process's by default).
            cwd: the working directory.
            user: run as this user (needs root), for servers that refuse to run as root.
            record_exit: leave the exit status in :attr:`exit_file`, for jobs that end by
                themselves (a file replay) and whose success must be told from a crash.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.exit_file.unlink(missing_ok=True)
        command = list(argv)
        if record_exit:
            command = ["sh", "-c", '"$@"; echo $? > "$0"', str(self.exit_file), *command]
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *command]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        self.launched = proc.pid
        self.child = proc
        self.pid_file.write_text(f"{proc.pid}\n")
        record = {
            "marker": self.marker,
            "argv": list(argv),
            "cwd": None if cwd is None else str(cwd),
            "user": user,
            "record_exit": record_exit,
        }
        self.command_file.write_text(json.dumps(record))
        self.wanted_file.touch()
        return proc.pid

    def restart(self, env: Mapping[str, str] | None) -> int | None:
        """Start again the command of the last :meth:`start`; None if none was recorded.

        The environment is not recorded (it may hold secrets): the caller passes it.
        """
        try:
            record = json.loads(self.command_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        cwd = record.get("cwd")
        return self.start(
            record["argv"],
            env=env,
            cwd=None if cwd is None else Path(cwd),
            user=record.get("user"),
            record_exit=bool(record.get("record_exit")),
        )

    def exit_reason(self) -> str:
        """Why the process is gone, as far as this process can tell, with its last log line.

        Only a parent learns how its child ended: the status is known for a process this object
        started (or one started with ``record_exit``), not for one another command started.
        """
        code = self.exit_status()  # a record_exit wrapper's child; the wrapper exits 0
        if code is None and self.child is not None:
            code = self.child.poll()
            if code is None and not _alive(self.child.pid):
                # A killed process with threads shows as a zombie as soon as its main thread
                # has exited, and cannot be reaped until the others have: wait for them.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self.child.wait(timeout=_REAP_WAIT_S)
        if code is None:
            reason = "exited (status unknown: started by another command)"
        elif code < 0:
            reason = f"killed by {_signal_name(-code)}"
        elif code > 128 and self.exit_file.exists():  # how sh reports a child killed by a signal
            reason = f"killed by {_signal_name(code - 128)}"
        else:
            reason = f"exit status {code}"
        last = next((line for line in reversed(self.log_tail(5).splitlines()) if line), "")
        return f"{reason}; last log line: {last[:200]}" if last else reason

    def exit_status(self) -> int | None:
        """The exit status a ``record_exit`` process left, or None while it runs."""
        try:
            return int(self.exit_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(
        self,
        timeout: float = 30.0,
        *,
        sig: signal.Signals = signal.SIGTERM,
        whole_group: bool = True,
    ) -> bool:
        """Stop our process and its children: ``sig``, then SIGKILL after ``timeout`` seconds.

        The process was started in a session of its own, so its whole process group is ours
        (servers such as MLflow fork workers). Servers that manage their children themselves
        (PostgreSQL) are signalled alone with ``whole_group=False``; what is left of the group
        once the leader has gone is killed either way.

        Returns:
            True if a process was running and has been stopped.
        """
        with self.exclusive():
            self.wanted_file.unlink(missing_ok=True)  # before the signal: never restarted
        pid = self.pid()
        if pid is None:
            return False
        try:
            proc = psutil.Process(pid)
            if whole_group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
            try:
                self._wait(proc, timeout)
            except psutil.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                self._wait(proc, 10)
            _kill_group_leftovers(pid)
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
        self.pid_file.unlink(missing_ok=True)
        return True

    def _wait(self, proc: psutil.Process, timeout: float) -> None:
        """Wait for ``proc`` to end (psutil.TimeoutExpired past ``timeout``).

        Our own child is waited for through its Popen, which so learns its exit status: reaped
        by psutil, it would still count as running (a ResourceWarning when it is collected).
        """
        child = self.child
        if child is None or child.pid != proc.pid:
            proc.wait(timeout=timeout)
            return
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise psutil.TimeoutExpired(timeout, proc.pid) from exc

    def exited_early(self) -> bool:
        """Whether the process we started has already died (its PID file is gone or stale)."""
        return self.pid() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, to explain a failed start."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def recorded_processes(run_dir: Path) -> list[ManagedProcess]:
    """Every process with a PID file in ``run_dir`` and the record of the command it ran.

    Whatever started it (a stack of other settings, ``processors start --name``, ``cluster
    up``), each is ours only while its command line still holds the marker of that record (or,
    in a record written before markers were, its whole command): :meth:`ManagedProcess.pid`
    tells, and forgets a stale PID file.
    """
    found = []
    for pid_file in sorted(run_dir.glob("*.pid")):
        name = pid_file.stem
        try:
            record = json.loads((run_dir / f"{name}.command.json").read_text())
            marker = record.get("marker") or " ".join(record["argv"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue  # no record of what it ran: nothing tells that it is ours
        found.append(ManagedProcess(name, run_dir, str(marker)))
    return found


def command_line(pid: int, exec_wait_s: float = 0.5) -> list[str]:
    """The command line of process ``pid``, read once its ``execve`` has given it one.

    ``subprocess.Popen`` returns (and the PID file is written) as soon as ``execve`` has replaced
    the child's memory, a moment before the kernel records where the new program's arguments
    are: until then ``/proc/<pid>/cmdline`` is empty, and a process started that moment would
    pass for someone else's (its PID file removed, a second copy started). A live process of
    ours never has an empty command line otherwise, so an empty one is read again, for at most
    ``exec_wait_s``.

    Raises:
        psutil.NoSuchProcess: the process is gone.
        psutil.AccessDenied: its command line is not readable.
    """
    process = psutil.Process(pid)
    deadline = time.monotonic() + exec_wait_s
    while True:
        command = process.cmdline()
        if command or time.monotonic() >= deadline:
            return command
        time.sleep(0.001)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill_group_leftovers(pgid: int) -> None:
    """SIGKILL what is left of a process group whose leader has exited."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_group(*children: subprocess.Popen[bytes]) -> None:
    """Stop children started in their own sessions (``start_new_session=True``).

    SIGTERM goes to each one's group (all first, so that they stop side by side), SIGKILL to a
    group whose leader is not gone after 60 s. A group is signalled even when its leader has
    exited: what the leader started (a JVM) may still run in it. For the one-off children of
    tests and benchmarks; the stack's own servers stop through :class:`ManagedProcess`.
    """
    for child in children:
        with contextlib.suppress(ProcessLookupError):  # the group is empty: nothing to stop
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
