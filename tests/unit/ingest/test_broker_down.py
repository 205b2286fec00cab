from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from featurestore.cli import main
from featurestore.errors import BackendUnavailableError
from featurestore.ingest import wait_for_brokers
from featurestore.kafka_connection import KafkaConnection
from tests.ports import free_port


def test_waiting_for_an_absent_broker_fails_clearly(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    messages: list[str] = []
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}") as caught:
        wait_for_brokers(KafkaConnection(f"127.0.0.1:{port}"), timeout_s=3, on_wait=messages.append)
    assert time.monotonic() - started < 15
    assert caught.value.retryable
    assert messages and "retrying" in messages[0]
    # Said once, through on_wait (the CLI prints it); a warning as well printed it twice.
    assert not [r for r in caplog.records if "is not reachable" in r.getMessage()]


def test_without_a_reporter_the_wait_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with pytest.raises(BackendUnavailableError):
        wait_for_brokers(KafkaConnection(f"127.0.0.1:{port}"), timeout_s=3)
    assert [r for r in caplog.records if "is not reachable (attempt 1)" in r.getMessage()]


def test_cli_exits_non_zero_with_a_message_when_kafka_is_down(tmp_path) -> None:
    port = free_port()
    result = CliRunner().invoke(
        main,
        ["ingest", "synthetic", "--count", "10", "--fast", "--connect-timeout", "2"],
        env={"FEATURESTORE_KAFKA__PORT": str(port)},
    )
    assert result.exit_code == 1
    assert f"Kafka at 127.0.0.1:{port} did not answer" in result.output
