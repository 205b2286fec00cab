"""The CLI with services down or bad input: one line naming what is wrong, a non-zero exit.

No server is needed: nothing listens on the ports these tests use, and a usage error is found
before any connection is made.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import psutil
import pytest
from click.testing import CliRunner
from click.testing import Result
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from featurestore.cli import _Group
from featurestore.cli import main
from featurestore.cli._options import FiniteFloat
from featurestore.cli.processors import await_start
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.definitions.repo import read_repo
from featurestore.errors import ConfigurationError
from featurestore.kafka_connection import create_client
from featurestore.stack import Stack
from featurestore.stack.processors import ProcessorService

_MISSING_CA = {
    "FEATURESTORE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "FEATURESTORE_KAFKA__USERNAME": "u",
    "FEATURESTORE_KAFKA__PASSWORD": "p",
    "FEATURESTORE_KAFKA__CA_FILE": "/nope.pem",
}


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listened to, for the module)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path, closed_port: int) -> dict[str, str]:
    """Every backend on a closed port, the data folder a temporary one, no settings file."""
    return {
        "FEATURESTORE_CONFIG": "",
        "FEATURESTORE_DATA_DIR": str(tmp_path / "data"),
        "FEATURESTORE_POSTGRES__PORT": str(closed_port),
        "FEATURESTORE_POSTGRES__CONNECT_TIMEOUT_S": "2",
        "FEATURESTORE_KAFKA__PORT": str(closed_port),
        "FEATURESTORE_REDIS__PORT": str(closed_port),
    }


def _one_line_error(result: Result, code: int = 1) -> str:
    """The error line of a failed command, checked to be a message and not a traceback."""
    assert result.exit_code == code, (result.output, result.exc_info)
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result.output


# 1a: processors reset with PostgreSQL down


def test_processors_reset_with_postgres_down_is_one_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["processors", "reset", "--yes"], env=env)
    output = _one_line_error(result)
    assert "PostgreSQL is unreachable (resetting the state of processor features)" in output


# 1b: times without a UTC offset, or not times at all


@pytest.mark.parametrize(
    "args",
    [
        ["drift", "--end", "garbage"],
        ["drift", "--end", "2024-01-02T15:00"],
        ["train", "--start", "garbage"],
        ["train", "--end", "2024-01-02"],
        ["anomalies", "train", "v", "f", "--start", "garbage"],
        ["processors", "correct", "--entities", "A", "--from", "x", "--to", "y"],
        [
            "processors", "correct", "--entities", "A",
            "--from", "2024-01-02T15:00+00:00", "--to", "2024-01-02T16:00",
        ],
    ],
    ids=["drift", "drift naive", "train", "train naive", "anomalies", "correct", "correct naive"],
)  # fmt: skip
def test_a_time_option_is_checked_before_any_connection(
    args: list[str], env: dict[str, str]
) -> None:
    result = CliRunner().invoke(main, args, env=env)
    output = _one_line_error(result, 2)
    assert "Invalid value for '--" in output and "UTC offset" in output, output
    assert "PostgreSQL" not in output and "MLflow" not in output


# 1c: librdkafka refusing the client settings


@pytest.mark.parametrize("client", [Consumer, Producer, AdminClient])
def test_a_missing_ca_file_names_the_setting(client: type) -> None:
    kafka = load_settings(_MISSING_CA).kafka.connection
    with pytest.raises(ConfigurationError) as info:
        create_client(client, kafka.consumer("g"))
    message = str(info.value)
    assert message.startswith("Kafka client settings refused: ssl.ca.location")
    assert "/nope.pem: No such file or directory" in message
    assert message.endswith(": FEATURESTORE_KAFKA__CA_FILE=/nope.pem")


def test_a_refused_property_without_a_setting_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r'"queue\.buffering\.max\.ms" value -3'):
        create_client(Producer, {"bootstrap.servers": "x:1", "queue.buffering.max.ms": -3})


def test_stack_check_reports_a_missing_ca_file_as_a_failed_check(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["stack", "check"], env={**env, **_MISSING_CA})
    output = _one_line_error(result)
    kafka = next(line for line in output.splitlines() if line.startswith("kafka: "))
    assert "Kafka client settings refused: ssl.ca.location" in kafka
    assert kafka.endswith("FEATURESTORE_KAFKA__CA_FILE=/nope.pem")
    assert "%3|" not in output  # librdkafka's own lines stay out of the command's output


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", "synthetic", "--count", "1", "--fast", "--connect-timeout", "2"],
        ["replay", "t"],
        ["replay", "dead-letter", "--reason", "late"],
    ],
    ids=["ingest synthetic", "replay", "replay dead letters"],
)
def test_kafka_commands_with_a_missing_ca_file_say_so(args: list[str], env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, args, env={**env, **_MISSING_CA})
    output = _one_line_error(result)
    assert "Kafka client settings refused: ssl.ca.location" in output
    assert "FEATURESTORE_KAFKA__CA_FILE=/nope.pem" in output


def test_replay_filters_by_reason_only_dead_letters(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["replay", "trades", "--reason", "late"], env=env)
    output = _one_line_error(result, code=2)
    assert (
        "Error: --reason filters dead letters: trades is not the dead-letter topic (dead-letter);"
        " add --dead-letters to read it as one" in output
    )


# 1d, 1e: files and folders the system refuses


def test_cluster_pack_into_a_folder_that_cannot_be_made(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["cluster", "pack", "--out", "/proc/nope/x"], env=env)
    output = _one_line_error(result)
    assert "cannot pack the environment into /proc/nope/x: /proc/nope: No such file" in output


def _group_raising(exc: Exception) -> click.Group:
    @click.group(cls=_Group)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise exc

    return group


def test_an_os_error_naming_a_path_is_one_line() -> None:
    error = FileNotFoundError(2, "No such file or directory", "/x/y")
    result = CliRunner().invoke(_group_raising(error), ["fail"])
    assert _one_line_error(result) == "Error: cannot use /x/y: No such file or directory\n"


@pytest.mark.parametrize("exc", [ValueError("a bug"), ConnectionRefusedError(111, "refused")])
def test_other_errors_keep_their_traceback(exc: Exception) -> None:
    result = CliRunner().invoke(_group_raising(exc), ["fail"])
    assert result.exception is exc


# 2: processors start waits visibly and cleans up


class _NeverReady(ProcessorService):
    """A processor whose process runs but never reports ready (a backend away for ever)."""

    interrupt_after: int | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    def healthy(self) -> bool:
        if self.interrupt_after is not None:
            self.interrupt_after -= 1
            if self.interrupt_after < 0:
                raise KeyboardInterrupt  # Ctrl-C while waiting
        return super().healthy()


def _launched(tmp_path: Path, interrupt_after: int | None = None) -> tuple[_NeverReady, int]:
    settings: Settings = load_settings(
        {"FEATURESTORE_CONFIG": "", "FEATURESTORE_DATA_DIR": str(tmp_path)}
    )
    service = _NeverReady(settings, "dummy")
    service.interrupt_after = interrupt_after
    service.prepare()
    pid = service.launch()
    return service, pid


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    ("interrupt_after", "status", "reason"),
    [(None, 1, "did not report ready within 1 s"), (1, 130, "interrupted")],
    ids=["timeout", "ctrl-c"],
)
def test_a_processor_that_does_not_start_is_stopped(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    interrupt_after: int | None,
    status: int,
    reason: str,
) -> None:
    service, pid = _launched(tmp_path, interrupt_after)
    try:
        with pytest.raises(SystemExit) as info:
            await_start(service, 1.0, 0.1)
        assert info.value.code == status
        assert _gone(pid) and service.process.pid() is None
        out, err = capsys.readouterr()
        assert out.startswith(f"processor dummy (pid {pid}): waiting up to 1 s for it to reach")
        assert err == (
            f"processor dummy {reason}; stopped it (pid {pid}); see {service.process.log_file}\n"
        )
    finally:
        if not _gone(pid):
            os.kill(pid, 9)


# 3: numbers that must be finite and positive


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--connect-timeout", "nan"),
        ("--connect-timeout", "-1"),
        ("--connect-timeout", "0"),
        ("--delivery-timeout", "inf"),
        ("--delivery-timeout", "0"),
        ("--rate", "nan"),
        ("--speed", "nan"),
    ],
)
def test_timeouts_and_rates_must_be_finite_and_positive(
    option: str, value: str, env: dict[str, str]
) -> None:
    args = ["ingest", "synthetic", "--count", "1", option, value]
    output = _one_line_error(CliRunner().invoke(main, args, env=env), 2)
    assert f"Invalid value for '{option}'" in output
    assert "Kafka" not in output


def test_finite_float_refuses_what_float_range_lets_through() -> None:
    nan = click.FloatRange(min=0, min_open=True).convert("nan", None, None)  # type: ignore[arg-type]
    assert nan != nan  # FloatRange lets nan through
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(click.BadParameter):
            FiniteFloat(min=0, min_open=True).convert(text, None, None)
    assert FiniteFloat(min=0, min_open=True).convert("2.5", None, None) == 2.5


# 4, 5: registry files


def _repo(tmp_path: Path, trades: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "rollups.py").write_text("from trades import *  # noqa\n")
    (repo / "trades.py").write_text(trades)
    return repo


@pytest.mark.parametrize(
    ("trades", "line", "message"),
    [
        ("x = 1\nsource = missing_source\n", 2, "NameError: name 'missing_source' is not defined"),
        ("assert 1 == 2\n", 1, "AssertionError"),
        ("{}['x']\n", 1, "KeyError: 'x'"),
        ("def f(:\n", 1, "SyntaxError: invalid syntax"),
    ],
    ids=["name", "assert", "key", "syntax"],
)
def test_an_error_importing_a_registry_file_names_the_file_at_fault(
    tmp_path: Path, trades: str, line: int, message: str
) -> None:
    repo = _repo(tmp_path, trades)
    with pytest.raises(ConfigurationError) as info:
        read_repo(repo)
    assert str(info.value) == (
        f"registry file {(repo / 'trades.py').resolve()}, line {line}: {message}"
    )


def test_registry_apply_reads_the_repo_before_asking_any_server(
    tmp_path: Path, env: dict[str, str], closed_port: int
) -> None:
    repo = _repo(tmp_path, "source = missing_source\n")
    env = {**env, "FEATURESTORE_SCHEMA_REGISTRY__URL": f"http://127.0.0.1:{closed_port}"}
    result = CliRunner().invoke(main, ["registry", "apply", "--repo", str(repo)], env=env)
    output = _one_line_error(result)
    assert "trades.py, line 1: NameError: name 'missing_source' is not defined" in output
    assert "schema registry" not in output.lower()


# 6: stack --only names


def test_stack_down_refuses_an_unknown_name(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["stack", "down", "--only", "nosuch"], env=env)
    assert "unknown stack component 'nosuch'; known: " in _one_line_error(result)


def test_stack_down_refuses_before_stopping_anything(tmp_path: Path) -> None:
    stack = Stack(load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)}))
    with pytest.raises(ConfigurationError, match="unknown stack component 'nosuch'"):
        stack.down(["postgres", "nosuch"])


# 7: help texts


def test_train_names_the_export_option_that_adds_labels() -> None:
    train_help = CliRunner().invoke(main, ["train", "--help"]).output
    export_help = CliRunner().invoke(main, ["export", "--help"]).output
    assert "featurestore export --label-horizon" in " ".join(train_help.split())
    assert "--label-horizon" in export_help and "--labels" not in export_help


def test_processors_correct_says_its_times_need_an_offset() -> None:
    output = " ".join(CliRunner().invoke(main, ["processors", "correct", "--help"]).output.split())
    assert output.count("with a UTC offset") == 2  # --from and --to


# 8: a folder without event files


def test_ingest_files_names_a_folder_without_event_files(
    tmp_path: Path, env: dict[str, str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    result = CliRunner().invoke(main, ["ingest", "files", str(folder)], env=env)
    output = _one_line_error(result, 2)
    assert f"no event files in {folder}" in output and "*.csv" in output and "*.parquet" in output


def test_a_comma_list_option_repeated_keeps_every_value() -> None:
    """``--x a,b --x c``: all three (click keeps only the last of a plain repeated option)."""
    from featurestore.cli._options import comma_list

    @click.command()
    @comma_list("--names", help="Names.")
    def show(names: tuple[str, ...]) -> None:
        click.echo(repr(names))

    runner = CliRunner()
    assert runner.invoke(show, ["--names", "a, b", "--names", "c,,"]).output == "('a', 'b', 'c')\n"
    assert runner.invoke(show, []).output == "()\n"


def test_a_comma_list_option_without_a_value_is_a_usage_error() -> None:
    """``--x ,`` names nothing: refused, rather than read as the option not given."""
    from featurestore.cli._options import comma_list

    @click.command()
    @comma_list("--names", help="Names.")
    def show(names: tuple[str, ...]) -> None:
        click.echo(repr(names))

    output = _one_line_error(CliRunner().invoke(show, ["--names", "a", "--names", " , "]), 2)
    assert "Invalid value for '--names': ' , ' names no value" in output


def test_processors_correct_with_no_entity_is_refused_before_connecting(
    env: dict[str, str],
) -> None:
    """Every backend is on a closed port: a usage error shows nothing was tried."""
    args = ["processors", "correct", "--entities", ",", "--from", "2024-01-02T15:00+00:00"]
    result = CliRunner().invoke(main, [*args, "--to", "2024-01-02T16:00+00:00"], env=env)
    output = _one_line_error(result, 2)
    assert "Invalid value for '--entities': ',' names no value" in output
    assert "unreachable" not in output
