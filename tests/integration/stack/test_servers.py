"""Each server of the local stack works from Python over a real loopback connection."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
import redis
import requests
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from featurestore.config import Settings
from featurestore.stack import Stack
from featurestore.topics import event_topic_specs

pytestmark = pytest.mark.integration


def test_kafka_produce_and_consume(stack: Settings, unique_name: Callable[[str], str]) -> None:
    topic = unique_name("smoke")
    admin = AdminClient(stack.kafka.connection.admin())
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(10)

    producer = Producer(
        stack.kafka.connection.producer(**{"enable.idempotence": True, "acks": "all"})
    )
    delivered: list[tuple[int | None, int | None]] = []
    producer.produce(
        topic,
        key=b"AAPL",
        value=b"hello",
        on_delivery=lambda err, msg: delivered.append((msg.partition(), msg.offset())),
    )
    assert producer.flush(10) == 0
    assert len(delivered) == 1

    consumer = Consumer(
        stack.kafka.connection.consumer(
            f"smoke-{uuid.uuid4().hex}", **{"auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([topic])
    try:
        msg = None
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None
        assert (msg.key(), msg.value()) == (b"AAPL", b"hello")
        assert (msg.partition(), msg.offset()) == delivered[0]
    finally:
        consumer.close()


def test_event_topics_keep_everything(stack: Settings) -> None:
    admin = AdminClient(stack.kafka.connection.admin())
    specs = event_topic_specs(stack)
    metadata = admin.list_topics(timeout=10)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs]
    for spec, future in zip(specs, admin.describe_configs(resources).values(), strict=True):
        assert spec.name in metadata.topics
        assert len(metadata.topics[spec.name].partitions) == spec.partitions
        assert future.result(10)["retention.ms"].value == "-1"


def test_postgres_round_trip(stack: Settings, unique_name: Callable[[str], str]) -> None:
    table = unique_name("smoke").replace("-", "_")
    with psycopg.connect(stack.postgres.dsn) as conn:
        conn.execute(f"CREATE TEMP TABLE {table} (symbol text, price double precision)")
        conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("IBM", 185.25))
        assert conn.execute(f"SELECT symbol, price FROM {table}").fetchall() == [("IBM", 185.25)]
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and str(version[0]).startswith("15.")


def test_redis_round_trip(stack: Settings, unique_name: Callable[[str], str]) -> None:
    key = unique_name("smoke")
    client = redis.Redis(
        host=stack.redis.host, port=stack.redis.port, **stack.redis.client_kwargs()
    )
    try:
        client.hset(key, mapping={"close": "101.5"})
        client.expire(key, 60)
        assert client.hgetall(key) == {b"close": b"101.5"}
        info: dict[str, str] = client.info("server")  # type: ignore[assignment]
        assert info["redis_version"].startswith("7.")
    finally:
        client.delete(key)
        client.close()


def test_mlflow_run_is_tracked(stack: Settings, unique_name: Callable[[str], str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow.tracking_uri)
    experiment_id = client.create_experiment(unique_name("smoke"))
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "auc", 0.75)
    client.set_terminated(run.info.run_id)
    fetched = client.get_run(run.info.run_id)
    assert fetched.data.metrics == {"auc": 0.75}
    assert fetched.info.status == "FINISHED"


def test_schema_registry_answers(stack: Settings) -> None:
    response = requests.get(
        f"{stack.schema_registry.url}/subjects",
        headers=stack.schema_registry.auth_header,
        timeout=5,
    )
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_second_up_finds_everything_running(stack: Settings) -> None:
    result = Stack(stack).up()
    assert result.started == []
    servers = Stack(stack).servers
    assert sorted(result.already_running) == sorted(c.name for c in servers)
    assert all(c.status().healthy for c in servers)
