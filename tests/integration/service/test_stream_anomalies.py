"""StreamAnomalies on the real Kafka and schema registry: resume, filters, fan-out, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import InvalidArgumentError
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy
from featurestore_client import UnavailableError
from featurestore_client._errors import FeatureStoreClientError

from featurestore.config import KafkaSettings
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.service.testing import ServerThread
from tests.integration.service.anomaly_data import BASE_TIME
from tests.integration.service.anomaly_data import AnomalyProducer
from tests.integration.service.anomaly_data import anomaly_record
from tests.integration.service.stream_resume import client_process
from tests.integration.service.stream_resume import resumes_exactly_once

pytestmark = pytest.mark.integration

WANTED = ("AAA", "BBB")


@pytest.fixture
def topic(new_topic: Callable[..., str]) -> str:
    return new_topic("anomalies")


@pytest.fixture
def producer(stack: Settings, topic: str) -> Iterator[AnomalyProducer]:
    made = AnomalyProducer(stack, topic)
    yield made
    made.close()


def _symbol_and_score(i: int) -> tuple[str, float]:
    """Every third anomaly is of an unwanted symbol, every fifth scores below the minimum."""
    return ("ZZZ" if i % 3 == 2 else WANTED[i % 2]), (0.1 if i % 5 == 4 else 0.5 + i / 1000)


def _expected(ids: range) -> list[str]:
    wanted = []
    for i in ids:
        symbol, score = _symbol_and_score(i)
        if symbol in WANTED and score >= 0.3:
            wanted.append(f"a{i:05d}")
    return wanted


def _produce(producer: AnomalyProducer, ids: range, pause_s: float = 0.0) -> None:
    for i in ids:
        producer.send(anomaly_record(i, *_symbol_and_score(i)))
        if pause_s:
            time.sleep(pause_s)
    producer.flush()


def test_killed_client_resumes_with_its_last_token_exactly_once(
    topic: str, producer: AnomalyProducer, start_server: Callable[..., ServerThread]
) -> None:
    server = start_server(topics=TopicSettings(anomalies=topic))
    _produce(producer, range(0, 30))
    resumes_exactly_once(
        lambda start: client_process(
            "anomaly_client", server.target, start, ",".join(WANTED), "0.3"
        ),
        f"time:{BASE_TIME.isoformat()}",
        threading.Thread(target=_produce, args=(producer, range(30, 120), 0.01)),
        read_first=25,
        expected=_expected(range(0, 120)),
        what="an anomaly",
    )


def test_sdk_resumes_by_itself_when_the_server_goes_away(
    topic: str, producer: AnomalyProducer, start_server: Callable[..., ServerThread]
) -> None:
    server = start_server(topics=TopicSettings(anomalies=topic))
    _produce(producer, range(0, 20))
    client = FeatureStoreClient(
        server.target, retry=RetryPolicy(max_attempts=20, initial_backoff_s=0.05)
    )
    expected = _expected(range(0, 40))
    ids: list[str] = []
    with (
        client,
        client.stream_anomalies(symbols=WANTED, min_score=0.3, start_time=BASE_TIME) as stream,
    ):
        for anomaly in stream:
            ids.append(anomaly.anomaly_id)
            if len(ids) == 5:
                server.stop(grace_s=1)  # the stream ends with UNAVAILABLE
                _produce(producer, range(20, 40))  # produced while no server runs
                start_server(topics=TopicSettings(anomalies=topic), port=server.port)
            if len(ids) == len(expected):
                break
        assert stream.reconnects >= 1
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(expected)


def test_filters_and_fields(
    topic: str, producer: AnomalyProducer, start_server: Callable[..., ServerThread]
) -> None:
    server = start_server(topics=TopicSettings(anomalies=topic))
    _produce(producer, range(0, 15))
    producer.send_raw(b"not avro at all", b"AAA")  # skipped, and it still advances the position
    _produce(producer, range(15, 30))
    with FeatureStoreClient(server.target) as client:
        stream = client.stream_anomalies(symbols=["BBB"], min_score=0.51, start_time=BASE_TIME)
        with stream:
            expected = [
                f"a{i:05d}"
                for i in range(30)
                if _symbol_and_score(i)[0] == "BBB" and _symbol_and_score(i)[1] >= 0.51
            ]
            got = []
            for anomaly in stream:
                got.append(anomaly)
                if len(got) == len(expected):
                    break
    assert sorted(a.anomaly_id for a in got) == expected
    first = next(a for a in got if a.anomaly_id == expected[0])
    i = int(first.anomaly_id[1:])
    assert first.symbol == "BBB"
    assert first.event_time == anomaly_record(i, "BBB", 0)["event_time"]
    assert first.features == {"rolling_1m__vwap_5m": 100.0 + i}
    assert first.model_version == "3"
    assert first.threshold == (0.5 if i % 2 else None)


def test_slow_subscriber_does_not_stall_others_and_subscriptions_are_capped(
    topic: str, producer: AnomalyProducer, start_server: Callable[..., ServerThread]
) -> None:
    server = start_server(topics=TopicSettings(anomalies=topic), max_stream_subscriptions=2)
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client:
        slow = client.stream_anomalies(start_time=BASE_TIME, resume=False)
        slow_iter = iter(slow)
        fast = client.stream_anomalies(start_time=BASE_TIME, resume=False)
        fast_iter = iter(fast)
        _produce(producer, range(0, 1))
        assert next(slow_iter).anomaly_id == "a00000"  # subscribed, then never reads again
        assert next(fast_iter).anomaly_id == "a00000"
        third = client.stream_anomalies(start_time=BASE_TIME, resume=False)
        with pytest.raises(FeatureStoreClientError, match="RESOURCE_EXHAUSTED"):
            next(iter(third))
        _produce(producer, range(1, 3000))
        got = 1
        for _ in fast_iter:
            got += 1
            if got == 3000:
                break
        assert got == 3000
        slow.close()
        fast.close()


def test_bad_token_unknown_topic_and_kafka_down(
    topic: str, start_server: Callable[..., ServerThread], stack: Settings
) -> None:
    server = start_server(topics=TopicSettings(anomalies=topic))
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(InvalidArgumentError, match="resume_token"):
            next(iter(client.stream_anomalies(resume_token="v1.garbage!")))
        other = start_server(topics=TopicSettings(anomalies=topic + "-absent"))
        c2 = FeatureStoreClient(other.target, retry=RetryPolicy(max_attempts=1))
        with c2, pytest.raises(NotFoundError, match="absent"):
            next(iter(c2.stream_anomalies()))
    down = start_server(
        topics=TopicSettings(anomalies=topic),
        update={"kafka": KafkaSettings(port=1)},
        backend_timeout_s=0.5,
    )
    c3 = FeatureStoreClient(
        down.target, retry=RetryPolicy(max_attempts=1, stream_reconnect_window_s=0)
    )
    with c3, pytest.raises(UnavailableError, match="Kafka"):
        next(iter(c3.stream_anomalies()))
