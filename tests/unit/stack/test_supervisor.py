"""The supervisor's loop against real (trivial) processes in a folder of the test's own.

The clock is the test's, so that backoffs of seconds pass at once; the processes, their PID
files, signals and deaths are real.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.stack.base import Component
from featurestore.stack.process import command_line
from featurestore.stack.process import wait_until
from featurestore.stack.restart import RestartPolicy
from featurestore.stack.supervisor import Supervisor
from featurestore.stack.supervisor import read_records

POLICY = RestartPolicy(
    initial_backoff_s=1.0, max_backoff_s=8.0, stable_after_s=30.0, crash_loop_after=3
)


class Trivial(Component):
    """A component whose process runs ``code`` (a Python one-liner)."""

    def __init__(self, settings: Settings, name: str, code: str, record_exit: bool = False):
        self.name = name
        self.code = f"{code}  # trivial-{name}-{settings.data_dir.name}"
        self.record_exit = record_exit
        self.prepared = 0
        super().__init__(settings)

    def marker(self) -> str:
        return f"trivial-{self.name}-{self.settings.data_dir.name}"

    def address(self) -> str:
        return "nowhere"

    def prepare(self) -> None:
        self.prepared += 1

    def launch(self) -> int:
        command = [sys.executable, "-c", self.code]
        return self.process.start(command, record_exit=self.record_exit)

    def healthy(self) -> bool:
        return self.process.pid() is not None


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})


TrivialFactory = Callable[..., Trivial]


@pytest.fixture
def trivial(settings: Settings) -> Iterator[TrivialFactory]:
    """Makes trivial components in the test's folder, and stops them all at the end."""
    made: list[Trivial] = []

    def make(name: str, code: str, record_exit: bool = False, kind: type = Trivial) -> Trivial:
        made.append(kind(settings, name, code, record_exit))
        return made[-1]

    yield make
    for component in made:
        component.stop()


def _supervisor(settings: Settings, *components: Component) -> tuple[Supervisor, Clock]:
    clock = Clock()
    state = settings.data_dir / "run" / "supervisor.json"
    return Supervisor(components, POLICY, state, clock=clock, draw=lambda: 0.0), clock


def _kill(component: Component) -> int:
    pid = component.process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: component.process.pid() is None, timeout=10)
    return pid


SLEEP = "import time; time.sleep(120)"


def test_a_killed_process_is_started_again_after_its_backoff(
    settings: Settings, trivial: TrivialFactory
) -> None:
    sleeper = trivial("sleeper", SLEEP)
    supervisor, clock = _supervisor(settings, sleeper)
    first = sleeper.launch()
    supervisor.tick()
    assert supervisor.records["sleeper"].pid == first

    _kill(sleeper)
    supervisor.tick()
    record = supervisor.records["sleeper"]
    assert record.last_exit is not None and record.last_exit.startswith("killed by SIGKILL")
    assert record.next_start_at == clock.now + POLICY.initial_backoff_s
    assert sleeper.process.pid() is None, "not started again before its backoff has passed"

    clock.now += POLICY.initial_backoff_s
    supervisor.tick()
    second = sleeper.process.pid()
    assert second is not None and second != first
    assert sleeper.prepared == 1, "prepare runs before each start again"
    assert supervisor.records["sleeper"].restarts == 1
    saved = read_records(supervisor.state_file)["sleeper"]
    assert saved.restarts == 1
    assert saved.pid == second


def test_a_process_stopped_on_purpose_is_not_started_again(
    settings: Settings, trivial: TrivialFactory
) -> None:
    sleeper = trivial("sleeper", SLEEP)
    supervisor, clock = _supervisor(settings, sleeper)
    sleeper.launch()
    supervisor.tick()
    assert sleeper.stop()
    for _ in range(5):
        clock.now += POLICY.max_backoff_s
        supervisor.tick()
    assert sleeper.process.pid() is None
    assert supervisor.records["sleeper"].restarts == 0
    assert supervisor.records["sleeper"].next_start_at is None


def test_a_process_that_keeps_dying_backs_off_and_is_reported(
    settings: Settings, trivial: TrivialFactory
) -> None:
    crasher = trivial("crasher", "import sys; print('bad config'); sys.exit(3)")
    supervisor, clock = _supervisor(settings, crasher)
    crasher.launch()
    waits = []
    for _ in range(6):
        assert wait_until(lambda: crasher.process.pid() is None, timeout=10)
        supervisor.tick()
        record = supervisor.records["crasher"]
        assert record.next_start_at is not None
        waits.append(record.next_start_at - clock.now)
        supervisor.tick()  # before the wait has passed: nothing is started
        assert supervisor.records["crasher"].restarts == len(waits) - 1
        clock.now = record.next_start_at
        supervisor.tick()
    record = supervisor.records["crasher"]
    assert waits == [1, 2, 4, 8, 8, 8]
    assert record.restarts == 6
    assert record.crash_loop
    assert record.quick_deaths == 6
    assert record.last_exit == "exit status 3; last log line: bad config"
    assert read_records(supervisor.state_file)["crasher"].crash_loop


def test_a_feed_that_finished_its_job_is_not_started_again(
    settings: Settings, trivial: TrivialFactory
) -> None:
    replay = trivial("replay", "print('sent everything')", record_exit=True)
    supervisor, clock = _supervisor(settings, replay)
    replay.launch()
    assert wait_until(lambda: replay.process.exit_status() == 0, timeout=10)
    clock.now += POLICY.max_backoff_s
    supervisor.tick()
    supervisor.tick()
    assert replay.process.pid() is None
    assert supervisor.records["replay"].restarts == 0


def test_the_process_started_again_runs_the_command_it_last_ran(
    settings: Settings, trivial: TrivialFactory
) -> None:
    # Started by hand with other arguments than launch() would give (a file replay with its
    # options, a processor with its own Spark settings): the supervisor keeps those.
    marker = f"trivial-custom-{settings.data_dir.name}"
    custom = trivial("custom", "raise SystemExit('launch() must not be used')")
    custom.process.start([sys.executable, "-c", f"import time; time.sleep(120)  # {marker}"])
    supervisor, clock = _supervisor(settings, custom)
    _kill(custom)
    supervisor.tick()
    clock.now += POLICY.initial_backoff_s
    supervisor.tick()
    pid = custom.process.pid()
    assert pid is not None
    assert command_line(pid)[1:] == ["-c", f"import time; time.sleep(120)  # {marker}"]


def test_a_start_that_fails_is_one_more_death_and_the_others_are_still_watched(
    settings: Settings, trivial: TrivialFactory
) -> None:
    class Unstartable(Trivial):
        def prepare(self) -> None:
            raise OSError("disk full")

    broken = trivial("broken", SLEEP, kind=Unstartable)
    sleeper = trivial("sleeper", SLEEP)
    supervisor, clock = _supervisor(settings, broken, sleeper)
    broken.launch()
    sleeper.launch()
    _kill(broken)
    _kill(sleeper)
    supervisor.tick()
    clock.now += POLICY.initial_backoff_s
    supervisor.tick()
    assert sleeper.process.pid() is not None
    record = supervisor.records["broken"]
    assert record.last_exit == "start failed: disk full"
    assert record.quick_deaths == 2
    assert record.next_start_at == clock.now + 2 * POLICY.initial_backoff_s


def test_a_death_of_a_process_another_command_started_has_an_unknown_status(
    settings: Settings, trivial: TrivialFactory
) -> None:
    sleeper = trivial("sleeper", SLEEP)
    sleeper.launch()
    # The supervisor runs as another process: its component object did not start this one.
    watched = trivial("sleeper", SLEEP)
    supervisor, _ = _supervisor(settings, watched)
    supervisor.tick()
    _kill(sleeper)
    supervisor.tick()
    reason = supervisor.records["sleeper"].last_exit
    assert reason is not None and reason.startswith("exited (status unknown")
