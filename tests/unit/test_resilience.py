"""What a retry can fix, the backoff between attempts, and the health they report."""

from __future__ import annotations

import threading

import psycopg
import pytest
import redis
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException

from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import SchemaError
from featurestore.resilience import Backoff
from featurestore.resilience import Health
from featurestore.resilience import Outage
from featurestore.resilience import Retrier
from featurestore.resilience import Stopped
from featurestore.resilience import outage_of
from processors.state_table import PartitionFencedError


def _chained(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (psycopg.OperationalError("connection refused"), "postgres"),
        (redis.ConnectionError("Error 111 connecting"), "redis"),
        (redis.TimeoutError("Timeout reading"), "redis"),
        (KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down", retriable=True)), "kafka"),
        (BackendUnavailableError("online store (Redis) unavailable while writing"), "redis"),
        (BackendUnavailableError("PostgreSQL is unreachable: x"), "postgres"),
        (BackendUnavailableError("schema registry at http://x unreachable"), "schema-registry"),
        (ConnectionRefusedError(111, "Connection refused"), "backend"),
        (
            _chained(
                RuntimeError("the processor failed storing a batch"),
                psycopg.OperationalError("server closed the connection"),
            ),
            "postgres",
        ),
    ],
)
def test_connection_failures_are_transient_and_name_their_backend(
    exc: Exception, dependency: str
) -> None:
    outage = outage_of(exc)
    assert outage is not None and outage.dependency == dependency
    assert outage.reason == " ".join(str(exc).split())


@pytest.mark.parametrize(
    "exc",
    [
        ConfigurationError("topic 'x' does not exist"),
        SchemaError("schema 7 cannot be parsed"),
        PartitionFencedError("partition 3 was claimed by another application"),
        KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied")),
        psycopg.errors.UndefinedTable("relation does not exist"),
        # A refused login: the password or pg_hba.conf has to change first.
        psycopg.OperationalError(
            'connection failed: FATAL:  password authentication failed for user "featurestore"'
        ),
        psycopg.OperationalError('FATAL:  no pg_hba.conf entry for host "127.0.0.1"'),
        psycopg.errors.InvalidPassword("invalid password"),
        redis.ResponseError("WRONGTYPE"),
        ValueError("a bug"),
        # The store's own verdict wins over the library error it was raised from.
        _chained(ConfigurationError("bad DSN"), psycopg.OperationalError("invalid dsn")),
    ],
)
def test_what_retrying_cannot_fix_is_not_an_outage(exc: Exception) -> None:
    assert outage_of(exc) is None


def test_backoff_doubles_up_to_its_cap_and_jitters_below_it() -> None:
    backoff = Backoff(initial_s=0.5, max_s=10.0, jitter=0.5)
    assert [backoff.delay(n, draw=0.0) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff.delay(6, draw=0.999) == pytest.approx(5.005)
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=0)


def test_the_retrier_waits_out_an_outage_reporting_it_then_serves_again() -> None:
    changes: list[dict[str, str]] = []
    waits: list[float] = []
    health = Health(changes.append)
    failures = [redis.ConnectionError("refused"), psycopg.OperationalError("gone")]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    def sleep(event: threading.Event, seconds: float) -> bool:
        waits.append(seconds)
        assert not health.serving
        return False

    retrier = Retrier(Backoff(initial_s=1, max_s=4, jitter=0), health, sleep=sleep)
    assert retrier.call(flaky, "step") == "done"
    assert waits == [1, 2]
    assert changes == [{"redis": "refused"}, {"redis": "refused", "postgres": "gone"}, {}]
    assert health.serving


def test_the_retrier_raises_what_is_not_transient_at_once() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ConfigurationError("no such view")

    with pytest.raises(ConfigurationError, match="no such view"):
        Retrier(sleep=lambda e, s: False).call(broken, "step")
    assert calls == [1]


def test_a_stop_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()

    def down() -> None:
        raise BackendUnavailableError("Kafka did not list topic 't'")

    retrier = Retrier(Backoff(initial_s=5, max_s=5), stop=stop)
    with pytest.raises(Stopped, match="kafka was away"):
        retrier.call(down, "start")
    assert retrier.health.reasons() == {"kafka": "Kafka did not list topic 't'"}
    assert Outage("kafka", "x") == Outage("kafka", "x")
