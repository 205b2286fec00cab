"""Each edge's library errors arrive as the store's own errors, with a clear message.

The libraries' errors here are real ones: a connection refused by a closed port (psycopg,
SQLAlchemy, confluent-kafka), and librdkafka's and Feast's error objects as they raise them.
No server is needed: nothing listens on the port these tests use.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from click.testing import CliRunner
from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException

from featurestore.config import load_settings
from featurestore.error_maps import kafka_error
from featurestore.error_maps import postgres_error
from featurestore.error_maps import postgres_errors
from featurestore.error_maps import registry_error
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError
from featurestore.events.registry import InMemorySchemaStore
from featurestore.events.replay import replay_topic
from featurestore.kafka_connection import KafkaConnection


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listened to, for the module)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _refused(port: int) -> psycopg.OperationalError:
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(host="127.0.0.1", port=port, dbname="x", user="x", connect_timeout=2)
    return info.value


# PostgreSQL (psycopg)


def test_postgres_refused_connection_is_unavailable(closed_port: int) -> None:
    with pytest.raises(BackendUnavailableError) as info, postgres_errors("reading the state"):
        psycopg.connect(host="127.0.0.1", port=closed_port, dbname="x", connect_timeout=2)
    message = str(info.value)
    assert message.startswith("PostgreSQL is unreachable (reading the state): ")
    assert str(closed_port) in message and "\n" not in message
    assert info.value.retryable and isinstance(info.value.__cause__, psycopg.OperationalError)


def test_the_models_offline_reads_speak_the_same_mapping(closed_port: int) -> None:
    """The training data's reads (models/) go through the PostgreSQL mapping, not their own."""
    from featurestore.definitions import market_definitions
    from models.data.source import latest_time

    view = market_definitions("p").view("bars_1m")
    dsn = f"host=127.0.0.1 port={closed_port} dbname=x user=x connect_timeout=2"
    with pytest.raises(BackendUnavailableError) as info:
        latest_time(dsn, view)
    assert str(info.value).startswith(
        "PostgreSQL is unreachable (the offline store, reading feature rows): "
    )


@pytest.mark.parametrize(
    "text",
    [
        'connection failed: FATAL:  password authentication failed for user "featurestore"',
        'connection failed: FATAL:  no pg_hba.conf entry for host "127.0.0.1"',
    ],
)
def test_postgres_refused_login_is_not_retried(text: str) -> None:
    error = postgres_error(psycopg.OperationalError(text), "claiming the partitions")
    assert isinstance(error, ConfigurationError) and not error.retryable
    assert str(error).startswith("PostgreSQL refused the login (claiming the partitions): ")


def test_postgres_missing_table_says_what_to_run() -> None:
    error = postgres_error(psycopg.errors.UndefinedTable('relation "bars_1m" does not exist'), "x")
    assert isinstance(error, ConfigurationError)
    assert "featurestore registry apply" in str(error)


# Feast's registry (SQLAlchemy over psycopg, Feast's own errors)


def test_sqlalchemy_refused_connection_is_unavailable(closed_port: int) -> None:
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://x@127.0.0.1:{closed_port}/x", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(sqlalchemy.exc.OperationalError) as info:
        engine.connect()
    engine.dispose()
    error = registry_error(info.value, "reading project 'p'")
    assert isinstance(error, BackendUnavailableError)
    assert str(error).startswith("PostgreSQL is unreachable (the Feast registry, reading project")
    assert "sqlalche.me" not in str(error)  # SQLAlchemy's help link and SQL are not repeated


def test_feast_errors_are_not_found_or_refused() -> None:
    from feast.errors import ConflictingFeatureViewNames
    from feast.errors import FeatureViewNotFoundException

    not_found = FeatureViewNotFoundException("bars_1m", "p")  # type: ignore[no-untyped-call]
    missing = registry_error(not_found, "reading")
    assert isinstance(missing, NotFoundError) and "bars_1m" in str(missing)
    refused = registry_error(ConflictingFeatureViewNames("bars_1m"), "registering")
    assert isinstance(refused, ConfigurationError) and str(refused).startswith("Feast refused")
    assert registry_error(ValueError("a bug"), "reading") is None  # not a library edge: raised


def test_load_definitions_with_postgres_down_is_one_clear_error(closed_port: int) -> None:
    from featurestore.definitions import load_definitions

    settings = load_settings({"FEATURESTORE_POSTGRES__PORT": str(closed_port)})
    with pytest.raises(BackendUnavailableError, match=r"^PostgreSQL is unreachable \("):
        load_definitions(settings, "nothing")


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--feature-service", "market_features_v1", "--out", "x.parquet"],
        ["train", "anomaly"],
        ["drift", "--no-log-mlflow"],
    ],
    ids=["export", "train", "drift"],
)
def test_cli_with_the_registry_unreachable_prints_one_line(
    args: list[str], closed_port: int, tmp_path: Path
) -> None:
    """``export``, ``train`` and ``drift`` read the Feast registry first; no traceback."""
    from featurestore.cli import main

    if args[0] == "export":
        entities = tmp_path / "entities.csv"
        entities.write_text("symbol,event_timestamp\nQNHI,2026-01-01T00:00:00Z\n")
        args = [*args, "--entities", str(entities)]
    env = {"FEATURESTORE_POSTGRES__PORT": str(closed_port), "FEATURESTORE_CONFIG": ""}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert "PostgreSQL is unreachable" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--entities", "no-such-rows.parquet", "--feature-service", "s"],
            "'no-such-rows.parquet' does not exist",
        ),
        (["--features", "close"], "'close' is not a feature reference of the form 'view:feature'"),
        ([], "give either feature references or a feature service"),
        (["--features", "bars_1m:close", "--feature-service", "s"], "not both or neither"),
    ],
    ids=["missing entity file", "bad reference", "no selection", "two selections"],
)
def test_export_refuses_a_malformed_command_before_reading_the_registry(
    args: list[str], message: str, closed_port: int, tmp_path: Path
) -> None:
    from featurestore.cli import main

    entities = tmp_path / "entities.csv"
    entities.write_text("symbol,event_timestamp\nQNHI,2026-01-01T00:00:00Z\n")
    env = {"FEATURESTORE_POSTGRES__PORT": str(closed_port), "FEATURESTORE_CONFIG": ""}
    out = str(tmp_path / "out.parquet")
    result = CliRunner().invoke(
        main, ["export", "--entities", str(entities), "--out", out, *args], env=env
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "PostgreSQL" not in result.output and "Traceback" not in result.output


# Kafka (confluent-kafka)


def test_kafka_brokers_down_is_unavailable(closed_port: int) -> None:
    connection = KafkaConnection(f"127.0.0.1:{closed_port}")
    consumer = Consumer(connection.consumer("error-edges", **{"log_level": 0}))
    try:
        with pytest.raises(KafkaException) as info:
            consumer.list_topics("trades", timeout=0.5)
    finally:
        consumer.close()
    error = kafka_error(info.value, "listing trades", connection)
    assert isinstance(error, BackendUnavailableError) and error.retryable
    assert str(error).startswith(f"Kafka at 127.0.0.1:{closed_port} (listing trades): ")
    assert "KafkaError{" not in str(error)


def test_a_replay_with_the_brokers_down_names_the_cluster(
    closed_port: int, capfd: pytest.CaptureFixture[str]
) -> None:
    connection = KafkaConnection(f"127.0.0.1:{closed_port}")
    with pytest.raises(BackendUnavailableError) as info:
        next(replay_topic(connection, InMemorySchemaStore(), "trades", timeout_s=0.5))
    assert str(info.value).startswith(f"Kafka at 127.0.0.1:{closed_port} (listing trades): ")
    # The error says it once; librdkafka's own "%3|...|FAIL|" line per reconnect (580 in the
    # 30 s of `featurestore replay`'s default timeout) no longer goes straight to stderr.
    assert "|FAIL|" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (KafkaError.SASL_AUTHENTICATION_FAILED, ConfigurationError),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, ConfigurationError),
        (KafkaError.INVALID_REPLICATION_FACTOR, ConfigurationError),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, NotFoundError),
        (KafkaError._ALL_BROKERS_DOWN, BackendUnavailableError),
        (KafkaError._TIMED_OUT, BackendUnavailableError),
    ],
)
def test_kafka_codes_say_what_retrying_can_fix(code: int, kind: type[FeatureStoreError]) -> None:
    error = kafka_error(KafkaException(KafkaError(code, "what librdkafka said")), "reading x")
    assert type(error) is kind
    assert "what librdkafka said" in str(error) and "(reading x)" in str(error)


def test_kafka_sasl_refusal_with_a_transport_code_is_refused() -> None:
    text = "SASL authentication error: Authentication failed during authentication"
    error = kafka_error(KafkaError(KafkaError._TRANSPORT, text), "producing")
    assert isinstance(error, ConfigurationError) and "refused the connection" in str(error)


# Settings (featurestore.config)


def test_settings_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.env"
    with pytest.raises(ConfigurationError, match=r"FEATURESTORE_CONFIG: cannot read .*absent\.env"):
        load_settings({"FEATURESTORE_CONFIG": str(missing)})
    with pytest.raises(ConfigurationError, match="Is a directory"):
        load_settings({"FEATURESTORE_CONFIG": str(tmp_path)})


def test_a_section_given_a_value_is_named() -> None:
    with pytest.raises(ConfigurationError, match="FEATURESTORE_KAFKA is given a value"):
        load_settings({"FEATURESTORE_KAFKA": "x", "FEATURESTORE_KAFKA__PORT": "1"})


def test_librdkafka_lines_are_logged_once_a_minute_each() -> None:
    """The filter of CLIENT_LOG: a line repeated by every reconnect is said once."""
    from featurestore.kafka_connection import CLIENT_LOG

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    CLIENT_LOG.addHandler(handler)
    try:
        for _ in range(500):
            CLIENT_LOG.error("FAIL [rdkafka#consumer-1] Connect to %s failed", "127.0.0.1:9")
        CLIENT_LOG.error("FAIL [rdkafka#consumer-1] Connect to %s failed", "127.0.0.1:8")
    finally:
        CLIENT_LOG.removeHandler(handler)
    assert seen == [
        "FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:9 failed",
        "FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:8 failed",
    ]


def test_postgres_missing_column_names_the_mismatch_and_the_command_that_shows_it() -> None:
    exc = psycopg.errors.UndefinedColumn('column "eps" of relation "fundamentals" does not exist')
    error = postgres_error(exc, "writing rows of feature view 'fundamentals'")
    assert isinstance(error, ConfigurationError) and not error.retryable
    assert str(error) == (
        "PostgreSQL (writing rows of feature view 'fundamentals'): column \"eps\" of relation"
        ' "fundamentals" does not exist; the table lacks a column its feature view declares (a'
        " table is never altered): `featurestore registry plan` names the difference"
    )
