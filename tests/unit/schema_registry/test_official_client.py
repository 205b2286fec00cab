"""Confluent's own Python client, serializers included, against the registry in this process.

The registry serves over a real socket (uvicorn on a free port) with an in-memory log, so every
URL, header and query string the official client sends goes through the real routes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry import ServerConfig
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField
from confluent_kafka.serialization import SerializationContext

from featurestore.config import load_settings
from featurestore.schema_registry import MemoryRecordLog
from featurestore.schema_registry import create_app
from tests.ports import free_port
from tests.unit.schema_registry.threaded_registry import serving

V1: dict[str, Any] = {
    "type": "record",
    "name": "Trade",
    "namespace": "md",
    "fields": [{"name": "px", "type": "double"}],
}
V2: dict[str, Any] = {
    "type": "record",
    "name": "Trade",
    "namespace": "md",
    "fields": [
        {"name": "px", "type": "double"},
        {"name": "venue", "type": "string", "default": "?"},
    ],
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = free_port()
    with serving(create_app(load_settings({}), log=MemoryRecordLog()), port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def client(url: str) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": url, "max.retries": 0}) as registry_client:
        yield registry_client


def avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


def test_client_calls(client: SchemaRegistryClient) -> None:
    one = client.register_schema("calls-value", avro(V1))
    two = client.register_schema("calls-value", avro(V2))
    assert two == one + 1
    assert client.register_schema("calls-value", avro(V1)) == one
    assert client.register_schema("calls-copy", avro(V2)) == two
    assert json.loads(client.get_schema(one).schema_str or "")["name"] == "Trade"
    assert client.get_schema_types() == ["AVRO"]
    assert sorted(client.get_subjects_by_schema_id(two)) == ["calls-copy", "calls-value"]
    assert {(v.subject, v.version) for v in client.get_schema_versions(two)} == {
        ("calls-copy", 1),
        ("calls-value", 2),
    }
    latest = client.get_latest_version("calls-value")
    assert (latest.schema_id, latest.version) == (two, 2)
    assert client.lookup_schema("calls-value", avro(V1)).version == 1
    assert client.get_versions("calls-value") == [1, 2]
    assert "calls-value" in client.get_subjects()
    assert client.test_compatibility("calls-value", avro(V2))
    assert client.test_compatibility_all_versions("calls-value", avro(V1))

    answer: Any = client.set_compatibility("calls-value", "full")  # the raw PUT body
    assert answer == {"compatibility": "FULL"}
    assert client.get_compatibility("calls-value") == "FULL"
    level = client.get_config("calls-value").compatibility_level
    assert level is not None and level.value == "FULL"
    client.delete_config("calls-value")

    assert client.delete_version("calls-copy", 1) == 1
    assert client.get_version("calls-copy", 1, deleted=True).schema_id == two
    assert client.delete_subject("calls-copy", permanent=True) == [1]
    assert client.delete_subject("calls-value") == [1, 2]
    assert "calls-value" in client.get_subjects(deleted=True)
    assert client.delete_subject("calls-value", permanent=True) == [1, 2]


def test_client_errors(client: SchemaRegistryClient) -> None:
    client.register_schema("errors-value", avro(V1))
    bad = dict(V2, fields=[{"name": "px", "type": "string"}])
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema("errors-value", avro(bad))
    assert (caught.value.http_status_code, caught.value.error_code) == (409, 409)
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_latest_version("errors-nope")
    assert missing.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as invalid:
        client.register_schema("errors-value", Schema("{not json", "AVRO"))
    assert invalid.value.error_code == 42201


def test_client_defaults(client: SchemaRegistryClient) -> None:
    # test_compatibility() asks for "latest": a subject without versions has nothing to break.
    assert client.test_compatibility("defaults-new-value", avro(V1)) is True
    # set_config() sends only the fields set; without a level it is accepted (and ignored).
    answer: Any = client.set_config(
        "defaults-value", ServerConfig(compatibility_group="application.major.version")
    )
    assert answer == {}
    with pytest.raises(SchemaRegistryError) as missing:
        client.delete_config("defaults-value")  # it has no config of its own
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40401)


def test_serializer_round_trip_across_versions(url: str) -> None:
    topic = "serde"
    value = SerializationContext(topic, MessageField.VALUE)
    with SchemaRegistryClient({"url": url}) as registry_client:
        old_writer = AvroSerializer(registry_client, json.dumps(V1))
        old_bytes = old_writer({"px": 1.5}, value)
        assert old_bytes is not None and old_bytes[0] == 0
        new_writer = AvroSerializer(registry_client, json.dumps(V2))
        new_bytes = new_writer({"px": 2.5, "venue": "XNAS"}, value)
        assert new_bytes is not None
        assert registry_client.get_versions(f"{topic}-value") == [1, 2]
        # Each record decodes with its own writer schema; a newer reader fills the default.
        any_reader = AvroDeserializer(registry_client)
        assert any_reader(old_bytes, value) == {"px": 1.5}
        new_reader = AvroDeserializer(registry_client, json.dumps(V2))
        assert new_reader(old_bytes, value) == {"px": 1.5, "venue": "?"}
        assert new_reader(new_bytes, value) == {"px": 2.5, "venue": "XNAS"}
        no_auto = AvroSerializer(
            registry_client, json.dumps(V1), conf={"auto.register.schemas": False}
        )
        assert no_auto({"px": 3.0}, value) is not None  # found by lookup
