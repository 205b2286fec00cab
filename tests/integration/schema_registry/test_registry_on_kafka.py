"""The real registry process, its state in Kafka, driven by Confluent's own client and serdes."""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField
from confluent_kafka.serialization import SerializationContext

from featurestore.config import Settings

pytestmark = pytest.mark.integration

V1: dict[str, Any] = {
    "type": "record",
    "name": "Trade",
    "namespace": "md",
    "fields": [{"name": "symbol", "type": "string"}, {"name": "price", "type": "double"}],
}
V2: dict[str, Any] = {
    **V1,
    "fields": [*V1["fields"], {"name": "venue", "type": "string", "default": "UNKNOWN"}],
}


def avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


@pytest.fixture
def client(registry: Any) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient(registry.client_config()) as registry_client:
        yield registry_client


def test_log_topic_is_compacted(stack: Settings, registry: Any) -> None:
    admin = AdminClient(stack.kafka.connection.admin())
    topic = admin.list_topics(registry.topic, timeout=10).topics[registry.topic]
    assert len(topic.partitions) == 1
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    resource = ConfigResource(ConfigResource.Type.TOPIC, registry.topic)
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["cleanup.policy"].value == "compact"


def test_register_lookup_evolve_and_read_old_events(
    stack: Settings,
    client: SchemaRegistryClient,
    unique_name: Callable[[str], str],
) -> None:
    topic = unique_name("sr-trades")
    subject = f"{topic}-value"
    context = SerializationContext(topic, MessageField.VALUE)
    admin = AdminClient(stack.kafka.connection.admin())
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
    producer = Producer(stack.kafka.connection.producer(**{"acks": "all"}))

    v1_writer = AvroSerializer(client, json.dumps(V1))
    old = {"symbol": "AAPL", "price": 189.5}
    producer.produce(topic, key=b"AAPL", value=v1_writer(old, context))
    v1 = client.lookup_schema(subject, avro(V1))
    assert v1.version == 1 and v1.schema_id is not None
    assert client.get_schema(v1.schema_id).schema_str is not None

    v2_writer = AvroSerializer(client, json.dumps(V2))
    new = {"symbol": "MSFT", "price": 410.25, "venue": "XNAS"}
    producer.produce(topic, key=b"MSFT", value=v2_writer(new, context))
    assert producer.flush(10) == 0
    v2 = client.get_latest_version(subject)
    assert (v2.version, v2.schema_id) == (2, v1.schema_id + 1)
    assert client.register_schema(subject, avro(V1)) == v1.schema_id  # same schema, same id
    assert client.register_schema(f"{topic}-copy", avro(V2)) == v2.schema_id  # global id

    consumer = Consumer(
        stack.kafka.connection.consumer(
            unique_name("sr-reader"),
            **{"auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
    )
    consumer.subscribe([topic])
    reader = AvroDeserializer(client, json.dumps(V2))  # the newer schema reads both
    decoded: list[Any] = []
    try:
        while len(decoded) < 2:
            message = consumer.poll(10)
            assert message is not None, f"only {decoded} arrived"
            assert message.error() is None
            decoded.append(reader(message.value(), context))
    finally:
        consumer.close()
    assert sorted(decoded, key=lambda d: d["symbol"]) == [{**old, "venue": "UNKNOWN"}, new]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            [*V1["fields"], {"name": "venue", "type": "string"}], id="field-without-default"
        ),
        pytest.param([{"name": "symbol", "type": "int"}, V1["fields"][1]], id="string-to-int"),
    ],
)
def test_incompatible_change_is_refused(
    client: SchemaRegistryClient, unique_name: Callable[[str], str], change: list[Any]
) -> None:
    subject = unique_name("sr-refused")
    client.register_schema(subject, avro(V1))
    assert client.get_compatibility() in ("BACKWARD", "BACKWARD_TRANSITIVE")
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema(subject, avro({**V1, "fields": change}))
    assert (caught.value.http_status_code, caught.value.error_code) == (409, 409)
    assert client.get_versions(subject) == [1]


def _snapshot(process: Any) -> dict[str, Any]:
    def get(path: str) -> Any:
        response = requests.get(f"{process.url}{path}", headers=process.headers, timeout=5)
        return response.json() if response.ok else response.status_code

    subjects = get("/subjects?deleted=true")
    ids = sorted(
        {
            get(f"/subjects/{s}/versions/{v}?deleted=true")["id"]
            for s in subjects
            for v in get(f"/subjects/{s}/versions?deleted=true")
        }
    )
    return {
        "subjects": subjects,
        "live": get("/subjects"),
        "versions": {
            s: [
                get(f"/subjects/{s}/versions/{v}?deleted=true")
                for v in get(f"/subjects/{s}/versions?deleted=true")
            ]
            for s in subjects
        },
        "schemas": {i: get(f"/schemas/ids/{i}") for i in ids},
        "config": get("/config"),
        "subject_config": {s: get(f"/config/{s}") for s in subjects},
    }


def test_restart_keeps_every_subject_version_and_id(
    start_registry: Callable[[str], Any], unique_name: Callable[[str], str]
) -> None:
    process = start_registry(unique_name("_schemas-restart"))
    try:
        with SchemaRegistryClient(process.client_config()) as client:
            client.register_schema("a-value", avro(V1))
            client.register_schema("a-value", avro(V2))
            client.register_schema("b-value", avro(V2))
            client.set_compatibility("b-value", "FULL")
            client.set_compatibility(level="FORWARD")
            client.delete_version("a-value", 1)
            quote = {
                "type": "record",
                "name": "Quote",
                "fields": [{"name": "bid", "type": "double"}],
            }
            gone = client.register_schema("c-value", avro(quote))
            client.delete_subject("c-value")
            client.delete_subject("c-value", permanent=True)
        before = _snapshot(process)
        process.stop(graceful=False)  # SIGKILL: every acknowledged write must be in Kafka

        process.port = process.new_port()  # a new process, even on another port, reads the same log
        process.start()
        assert _snapshot(process) == before
        with SchemaRegistryClient(process.client_config()) as client:
            fresh = {"type": "record", "name": "Fresh", "fields": []}
            assert client.register_schema("d-value", avro(fresh)) == gone + 1  # never reused
            assert client.get_compatibility("b-value") == "FULL"
    finally:
        process.stop()
