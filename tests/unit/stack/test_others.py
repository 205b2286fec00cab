"""The processes of a data folder that are none of the settings' components: found, listed and
stopped by ``stack down``, and never a process that is not ours.

The processes are real (a sleeping Python); no server is started: a stack whose settings name
one Kafka node, built over a ``run/`` folder where ``kafka-2`` and an ad-hoc processor run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import main
from featurestore.config import load_settings
from featurestore.stack import Stack
from featurestore.stack.process import ManagedProcess
from featurestore.stack.process import recorded_processes


@pytest.fixture
def local(tmp_path: Path) -> Stack:
    return Stack(load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path / "data")}))


@pytest.fixture
def run_dir(local: Stack) -> Path:
    run = local.supervisor.process.run_dir
    run.mkdir(parents=True)
    return run


@pytest.fixture
def start(run_dir: Path) -> Iterator[Callable[[str], ManagedProcess]]:
    """Start a sleeping process named as given in ``run_dir``; any left is stopped after."""
    started: list[ManagedProcess] = []

    def sleeper(name: str) -> ManagedProcess:
        marker = f"import time; time.sleep(60)  # {name} in {run_dir}"
        process = ManagedProcess(name, run_dir, marker)
        process.start([sys.executable, "-c", marker])
        started.append(process)
        return process

    yield sleeper
    for process in started:
        process.stop(timeout=5)
        process.pid()  # its Popen reaps it (or learns it was), so none is reported running


def test_a_start_records_its_marker_and_the_record_finds_it_again(
    run_dir: Path, start: Callable[[str], ManagedProcess]
) -> None:
    started = start("processors-adhoc")
    assert json.loads(started.command_file.read_text())["marker"] == started.marker
    [found] = recorded_processes(run_dir)
    assert (found.name, found.marker, found.pid()) == (
        "processors-adhoc",
        started.marker,
        started.pid(),
    )


def test_a_record_without_a_marker_is_matched_by_its_whole_command(
    run_dir: Path, start: Callable[[str], ManagedProcess]
) -> None:
    started = start("kafka-2")
    record = json.loads(started.command_file.read_text())
    del record["marker"]  # as written before markers were recorded
    started.command_file.write_text(json.dumps(record))
    [found] = recorded_processes(run_dir)
    assert found.pid() == started.pid()


def test_a_pid_file_without_a_record_or_naming_someone_else_is_left_alone(
    run_dir: Path,
) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (run_dir / "unrecorded.pid").write_text(f"{other.pid}\n")
        (run_dir / "someone.pid").write_text(f"{other.pid}\n")
        (run_dir / "someone.command.json").write_text(
            json.dumps({"marker": "not-in-that-command-line", "argv": ["x"]})
        )
        assert [p.name for p in recorded_processes(run_dir)] == ["someone"]
        assert [p.pid() for p in recorded_processes(run_dir)] == [None]
        assert not (run_dir / "someone.pid").exists(), "a stale PID file is forgotten"
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_down_stops_the_others_after_the_supervisor(
    local: Stack, start: Callable[[str], ManagedProcess]
) -> None:
    assert local.settings.kafka.brokers == 1
    node = start("kafka-2")  # a node of a stack started with 3 brokers
    adhoc = start("processors-adhoc")
    assert sorted(p.name for p in local.others()) == ["kafka-2", "processors-adhoc"]
    assert local.down(["redis"]) == [], "naming components leaves the others running"
    assert node.pid() is not None
    assert sorted(local.down()) == ["kafka-2", "processors-adhoc"]
    assert (node.pid(), adhoc.pid()) == (None, None)
    assert local.others() == []


def test_stack_status_lists_the_others(
    local: Stack, start: Callable[[str], ManagedProcess]
) -> None:
    adhoc = start("processors-adhoc")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    env = {
        "FEATURESTORE_CONFIG": "",
        "FEATURESTORE_DATA_DIR": str(local.settings.data_dir),
        "FEATURESTORE_PROMETHEUS__PORT": str(closed),
    }
    result = CliRunner().invoke(main, ["stack", "status"], env=env)
    assert result.exit_code == 3, result.output  # no server of the stack runs
    lines = result.output.splitlines()
    at = lines.index("  also running from this data folder (stack down stops them too):")
    assert lines[at + 1].split() == [
        "processors-adhoc",
        "running",
        "pid",
        str(adhoc.pid()),
        str(adhoc.log_file),
    ]
