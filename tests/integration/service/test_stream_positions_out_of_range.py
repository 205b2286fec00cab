"""Streams never jump silently: positions retention deleted, or the topic never held, are refused.

A resume token is a position in every partition of the topic. When retention has deleted records
after that position, when the position is past a partition's end, or when it names a partition
the topic lacks, resuming from it would skip records without a word: the server refuses it with
OUT_OF_RANGE instead. A live stream whose unread records retention deletes fails the same way
rather than jumping to the end. A token from before partitions were added still resumes, the new
partitions from their beginning. Real Kafka, schema registry (and MLflow for predictions).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import grpc
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from featurestore_client._errors import FeatureStoreClientError

from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.events import PredictionLog
from featurestore.service.stream_position import StreamPosition
from featurestore.service.testing import ServerThread
from models.publish import PredictionPublisher
from tests.integration.service.anomaly_data import BASE_TIME
from tests.integration.service.anomaly_data import AnomalyProducer
from tests.integration.service.anomaly_data import anomaly_record
from tests.integration.service.mlflow_models import RegisteredModels

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(new_topic: Callable[..., str]) -> str:
    return new_topic("anomalies", partitions=1)


@pytest.fixture
def producer(stack: Settings, topic: str) -> Iterator[AnomalyProducer]:
    made = AnomalyProducer(stack, topic)
    yield made
    made.close()


def _produce(producer: AnomalyProducer, ids: range, *, features: int = 1) -> None:
    for i in ids:
        record = anomaly_record(i, "AAA", 0.9)
        if features > 1:  # large records, so that the consumer cannot prefetch them all
            record["features"] = {f"f{k:03d}": float(k) for k in range(features)}
        producer.send(record)
    producer.flush()


def _delete_before(stack: Settings, topic: str, partition: int, offset: int) -> None:
    """What retention does: delete the partition's records before ``offset``."""
    admin = AdminClient(stack.kafka.connection.admin())
    for future in admin.delete_records([TopicPartition(topic, partition, offset)]).values():
        future.result(30)


def _ids(
    client: FeatureStoreClient, count: int, resume: bool = False, **start: object
) -> list[str]:
    with client.stream_anomalies(resume=resume, **start) as stream:  # type: ignore[arg-type]
        ids: list[str] = []
        for anomaly in stream:
            ids.append(anomaly.anomaly_id)
            if len(ids) == count:
                return ids
    raise AssertionError("the stream ended")


def _token_of(client: FeatureStoreClient, anomaly_id: str) -> str:
    """The resume token of anomaly ``anomaly_id``, streamed from the topic's start."""
    with client.stream_anomalies(resume=False, start_time=BASE_TIME) as stream:
        return next(a for a in stream if a.anomaly_id == anomaly_id).resume_token


def _refusal(client: FeatureStoreClient, token: str) -> FeatureStoreClientError:
    with pytest.raises(FeatureStoreClientError) as raised:
        _ids(client, 1, resume_token=token)
    assert raised.value.code is grpc.StatusCode.OUT_OF_RANGE, raised.value
    return raised.value


def test_tokens_retention_deleted_past_the_end_or_of_other_partitions_are_refused(
    stack: Settings,
    topic: str,
    producer: AnomalyProducer,
    start_server: Callable[..., ServerThread],
) -> None:
    _produce(producer, range(10))
    server = start_server(topics=TopicSettings(anomalies=topic))
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client:
        token = _token_of(client, "a00002")
        _delete_before(stack, topic, 0, 8)  # a00003..a00007 are gone
        expired = _refusal(client, token)
        assert "expired" in expired.details and "5 records" in expired.details
        assert topic in expired.details and "resume_token" in expired.details

        beyond = _refusal(client, StreamPosition(topic, {0: 1000}).token())
        assert "ends at offset 10" in beyond.details and "1000" in beyond.details

        other = _refusal(client, StreamPosition(topic, {0: 10, 5: 3}).token())
        assert "partition 5" in other.details

        # A token at the partition's end or start is fine: the next record is the next one.
        _produce(producer, range(10, 12))
        assert _ids(client, 1, resume_token=StreamPosition(topic, {0: 8}).token()) == ["a00008"]
        assert _ids(client, 1, resume_token=StreamPosition(topic, {0: 11}).token()) == ["a00011"]


def test_a_live_stream_whose_unread_records_are_deleted_fails_instead_of_skipping(
    stack: Settings,
    topic: str,
    producer: AnomalyProducer,
    start_server: Callable[..., ServerThread],
) -> None:
    _produce(producer, range(1))
    server = start_server(topics=TopicSettings(anomalies=topic))
    with (
        FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client,
        client.stream_anomalies(resume=False, start_time=BASE_TIME) as stream,
    ):
        anomalies = iter(stream)
        assert next(anomalies).anomaly_id == "a00000"  # then the subscriber lags
        _produce(producer, range(1, 8000), features=100)  # ~8 MB: more than a consumer prefetches
        _delete_before(stack, topic, 0, 7900)
        read: list[str] = []
        with pytest.raises(FeatureStoreClientError) as raised:
            for anomaly in anomalies:
                read.append(anomaly.anomaly_id)
                assert anomaly.anomaly_id != "a07900", "records were skipped without an error"
    assert raised.value.code is grpc.StatusCode.OUT_OF_RANGE, raised.value
    assert "retention deleted records it had not read yet" in raised.value.details
    assert read == [f"a{i:05d}" for i in range(1, len(read) + 1)]  # in order, none skipped


def test_a_token_from_before_partitions_were_added_reads_the_new_ones_from_their_start(
    stack: Settings,
    topic: str,
    producer: AnomalyProducer,
    start_server: Callable[..., ServerThread],
) -> None:
    _produce(producer, range(3))
    server = start_server(topics=TopicSettings(anomalies=topic))
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client:
        token = _token_of(client, "a00002")
        admin = AdminClient(stack.kafka.connection.admin())
        for future in admin.create_partitions([NewPartitions(topic, 3)]).values():
            future.result(30)
        # Keys spread over the three partitions now; every one must arrive exactly once.
        for i in range(3, 30):
            record = anomaly_record(i, "AAA", 0.9)
            record["symbol"] = f"S{i}"
            producer.send(record)
        producer.flush()
    # New partitions' leaders may still be settling (UNAVAILABLE): the SDK resumes through that.
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=20)) as client:
        got = _ids(client, 27, resume=True, resume_token=token)
    assert sorted(got) == [f"a{i:05d}" for i in range(3, 30)]


def test_stream_predictions_refuses_an_expired_token_too(
    stack: Settings,
    new_topic: Callable[..., str],
    models: RegisteredModels,
    start_server: Callable[..., ServerThread],
) -> None:
    topic = new_topic("predictions", partitions=1)
    publisher = PredictionPublisher.from_settings(stack, topic)
    now = datetime.now(UTC)
    for i in range(6):
        publisher.publish(
            [
                PredictionLog(
                    request_id=f"p{i}",
                    model_name=models.name,
                    model_version="1",
                    entity={"symbol": "AAA"},
                    prediction=0.5,
                    request_time=now,
                    response_time=now,
                    features={},
                    feature_time=None,
                )
            ]
        )
    publisher.close()
    server = start_server(topics=TopicSettings(predictions=topic))
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client:
        with client.stream_predictions(models.name, start_time=now, resume=False) as stream:
            token = next(p for p in stream if p.prediction_id == "p1").resume_token
        _delete_before(stack, topic, 0, 4)
        with (
            pytest.raises(FeatureStoreClientError) as raised,
            client.stream_predictions(models.name, resume_token=token, resume=False) as stream,
        ):
            next(iter(stream))
    assert raised.value.code is grpc.StatusCode.OUT_OF_RANGE, raised.value
    assert "expired" in raised.value.details and "2 records" in raised.value.details
