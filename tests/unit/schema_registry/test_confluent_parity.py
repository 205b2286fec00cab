"""Answers that follow Confluent's registry where they once differed from it.

Each test names the Confluent code it matches (``AbstractSchemaRegistry``, ``KafkaSchemaRegistry``
and the REST resources of ``confluentinc/schema-registry``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from featurestore.config import load_settings
from featurestore.schema_registry import MemoryRecordLog
from featurestore.schema_registry import create_app
from featurestore.schema_registry import parse_schema
from featurestore.schema_registry.errors import InvalidSchemaError

V1 = {"type": "record", "name": "R", "namespace": "ns", "fields": [{"name": "a", "type": "long"}]}
V2 = {
    "type": "record",
    "name": "R",
    "namespace": "ns",
    "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(load_settings({}), log=MemoryRecordLog())) as test_client:
        # Every schema may follow every other: these tests are about versions, not levels.
        assert test_client.put("/config", json={"compatibility": "NONE"}).status_code == 200
        yield test_client


def body(schema: object, **extra: Any) -> dict[str, Any]:
    return {"schema": json.dumps(schema), **extra}


def assert_error(response: Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error_code"] == code, payload
    message: str = payload["message"]
    return message


def register(client: TestClient, subject: str, *schemas: object) -> None:
    for schema in schemas:
        assert client.post(f"/subjects/{subject}/versions", json=body(schema)).status_code == 200


# -- POST /compatibility (CompatibilityResource.testCompatibilityBySubjectName) ----------------


def test_compatibility_of_a_subject_without_versions(client: TestClient) -> None:
    url = "/compatibility/subjects/brand-new/versions"
    # No live latest: nothing to test against, so compatible (confluent-kafka's
    # test_compatibility() asks for "latest" by default).
    assert client.post(f"{url}/latest", json=body(V1)).json() == {"is_compatible": True}
    # A numbered version that does not exist is a missing version, not a missing subject.
    assert_error(client.post(f"{url}/3", json=body(V1)), 404, 40402)
    register(client, "gone", V1)
    client.delete("/subjects/gone")
    gone = "/compatibility/subjects/gone/versions"
    assert client.post(f"{gone}/latest", json=body(V2)).json() == {"is_compatible": True}
    assert_error(client.post(f"{gone}/1", json=body(V2)), 404, 40402)


def test_compatibility_of_an_invalid_schema(client: TestClient) -> None:
    register(client, "s", V1)
    url = "/compatibility/subjects/s/versions/latest"
    invalid = {"schema": '{"type":"record"}'}
    verbose = client.post(f"{url}?verbose=true", json=invalid)
    assert verbose.status_code == 200
    assert verbose.json()["is_compatible"] is False
    assert "Invalid schema" in verbose.json()["messages"][0]
    assert_error(client.post(url, json=invalid), 422, 42201)
    # The version is looked up first: a missing one is 40402 whatever the schema.
    assert_error(client.post("/compatibility/subjects/s/versions/7", json=invalid), 404, 40402)


# -- DELETE /subjects/{s}/versions/{v} (AbstractSchemaRegistry.validateDeleteSchemaVersion) ----


def test_soft_deleting_a_soft_deleted_version(client: TestClient) -> None:
    register(client, "a", V1)
    assert client.delete("/subjects/a/versions/1").json() == 1
    assert_error(client.delete("/subjects/a/versions/1"), 404, 40406)
    # No live version left: "latest" names none, though the subject is known.
    assert_error(client.delete("/subjects/a/versions/latest"), 404, 40402)
    assert_error(client.delete("/subjects/a/versions/2"), 404, 40402)
    assert_error(client.delete("/subjects/never/versions/1"), 404, 40401)


def test_latest_is_the_latest_live_version(client: TestClient) -> None:
    register(client, "b", V1, V2)
    client.delete("/subjects/b/versions/2")
    for query in ("", "?deleted=true"):
        latest = client.get(f"/subjects/b/versions/latest{query}")
        assert latest.json()["version"] == 1, query
        assert json.loads(client.get(f"/subjects/b/versions/latest/schema{query}").text) == V1
    # v1 is live: a permanent delete of "latest" refuses it rather than deleting v2.
    assert_error(client.delete("/subjects/b/versions/latest?permanent=true"), 404, 40407)
    assert client.get("/subjects/b/versions?deleted=true").json() == [1, 2]


def test_latest_of_a_wholly_soft_deleted_subject(client: TestClient) -> None:
    register(client, "c", V1)
    client.delete("/subjects/c")
    assert_error(client.delete("/subjects/c/versions/latest?permanent=true"), 404, 40402)
    assert client.get("/subjects/c/versions?deleted=true").json() == [1]  # nothing deleted
    assert_error(client.get("/subjects/c/versions/latest?deleted=true"), 404, 40402)
    assert_error(client.get("/subjects/c/versions/latest"), 404, 40401)
    assert client.get("/subjects/c/versions/1?deleted=true").json()["version"] == 1


# -- /config (ConfigResource) -------------------------------------------------------------------


def test_deleting_a_subject_config_that_is_not_there(client: TestClient) -> None:
    register(client, "s", V1)
    assert_error(client.delete("/config/s"), 404, 40401)
    assert client.get("/config").json() == {"compatibilityLevel": "NONE"}
    client.put("/config/s", json={"compatibility": "FULL"})
    assert client.delete("/config/s").json() == {"compatibilityLevel": "FULL"}
    assert_error(client.delete("/config/s"), 404, 40401)


def test_config_without_a_level(client: TestClient) -> None:
    # Other fields of Confluent's config are accepted, neither stored nor echoed back.
    assert client.put("/config", json={"normalize": True}).json() == {"compatibility": "NONE"}
    assert client.get("/config").json() == {"compatibilityLevel": "NONE"}
    group = {"compatibilityGroup": "application.major.version"}
    assert client.put("/config/s", json=group).json() == {}
    assert_error(client.get("/config/s"), 404, 40408)
    both = {"compatibility": "full", "normalize": True}
    assert client.put("/config/s", json=both).json() == {"compatibility": "FULL"}
    assert client.put("/config/s", json={"normalize": False}).json() == {"compatibility": "FULL"}
    assert client.get("/config/s").json() == {"compatibilityLevel": "FULL"}
    # A level, when present, must still be one.
    assert_error(client.put("/config/s", json={"compatibility": "SIDEWAYS"}), 422, 42203)
    assert_error(client.put("/config", json={"compatibilityLevel": ""}), 422, 42203)
    assert_error(client.put("/config"), 422, 422)  # no body at all: a constraint violation


# -- deletedOnly (SubjectsResource.list, SubjectVersionsResource.listVersions) -------------------


def test_deleted_only_in_confluents_spelling(client: TestClient) -> None:
    register(client, "live", V1, V2)
    register(client, "gone", V1)
    client.delete("/subjects/gone")
    client.delete("/subjects/live/versions/1")
    for spelling in ("deletedOnly", "deleted_only"):
        assert client.get(f"/subjects?{spelling}=true").json() == ["gone"]
        assert client.get(f"/subjects?deleted=true&{spelling}=true").json() == ["gone"]
        assert client.get(f"/subjects/live/versions?{spelling}=true").json() == [1]
    assert client.get("/subjects?deletedOnly=false").json() == ["live"]


# -- POST /subjects/{s}/versions with "id" or "version" (KafkaSchemaRegistry.register) ----------


def test_register_with_an_id_outside_import_mode(client: TestClient) -> None:
    message = assert_error(client.post("/subjects/s/versions", json=body(V1, id=100)), 422, 42205)
    assert "import mode" in message
    assert_error(client.post("/subjects/s/versions", json=body(V1, id=0)), 422, 42205)
    assert_error(client.get("/schemas/ids/100"), 404, 40403)
    assert client.post("/subjects/s/versions", json=body(V1, id=-1)).json() == {"id": 1}
    # The id the schema already has in the subject: that registration is the answer.
    assert client.post("/subjects/s/versions", json=body(V1, id=1)).json() == {"id": 1}
    assert_error(client.post("/subjects/s/versions", json=body(V1, id=2)), 422, 42205)
    assert client.get("/subjects/s/versions").json() == [1]


def test_register_with_a_version(client: TestClient) -> None:
    wrong = client.post("/subjects/t/versions", json=body(V1, version=7))
    assert assert_error(wrong, 422, 42201) == "Version is not one more than previous version"
    assert_error(client.get("/subjects/t/versions"), 404, 40401)
    assert client.post("/subjects/t/versions", json=body(V1, version=1)).json() == {"id": 1}
    assert client.post("/subjects/t/versions", json=body(V2, version=0)).json() == {"id": 2}
    assert_error(client.post("/subjects/t/versions", json=body(V1, version=2)), 422, 42201)
    # The next version, for a schema live already: Confluent registers it again under it.
    assert client.post("/subjects/t/versions", json=body(V1, version=3)).json() == {"id": 1}
    assert client.get("/subjects/t/versions").json() == [1, 2, 3]
    assert_error(client.post("/subjects/t/versions", json=body(V1, version="4")), 400, 400)


def test_registering_a_soft_deleted_schema_again_tombstones_it(client: TestClient) -> None:
    # RestApiTest.testSameIdTombstoneStillRunsWhenNoReferences
    register(client, "r", V1, V2)
    client.delete("/subjects/r/versions/1")
    client.delete("/subjects/r/versions/2")
    assert client.post("/subjects/r/versions", json=body(V2)).json() == {"id": 2}
    assert_error(client.get("/subjects/r/versions/2?deleted=true"), 404, 40402)
    assert client.get("/subjects/r/versions?deleted=true").json() == [1, 3]
    assert client.get("/subjects/r/versions/3").json()["id"] == 2
    assert client.get("/subjects/r/versions/1?deleted=true").json()["id"] == 1  # other id: kept
    assert client.get("/schemas/ids/2/versions").json() == [{"subject": "r", "version": 3}]


# -- Avro names (Confluent parses new schemas with Avro's strict name validator) ----------------


def record(field: str = "a", name: str = "R", namespace: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "record", "name": name, "fields": []}
    schema["fields"] = [{"name": field, "type": "string"}]
    if namespace is not None:
        schema["namespace"] = namespace
    return schema


def enum(*symbols: str) -> dict[str, Any]:
    return record() | {
        "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": list(symbols)}}]
    }


@pytest.mark.parametrize(
    ("schema", "bad"),
    [
        (record("f-x"), "f-x"),
        (record("1abc"), "1abc"),
        (record("a b"), "a b"),
        (record("é-ü"), "é-ü"),
        (record("é"), "é"),
        (record(name="my-record"), "my-record"),
        (record(namespace="md.x-y"), "x-y"),
        (record(name="x-y.R"), "x-y"),
        (enum("OK", "not-ok"), "not-ok"),
        ({"type": "array", "items": record("f.x")}, "f.x"),
    ],
)
def test_names_must_follow_the_avro_specification(schema: object, bad: str) -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        parse_schema(json.dumps(schema))
    assert bad in str(caught.value)
    assert caught.value.error_code == 42201


def test_valid_names(client: TestClient) -> None:
    schema = record("_under_1", name="md.sub.Trade_2")
    assert parse_schema(json.dumps(enum("A", "_b", "c3"))).text
    assert client.post("/subjects/n/versions", json=body(schema)).status_code == 200
    bad = client.post("/subjects/n/versions", json=body(record("f-x")))
    assert '"f-x"' in assert_error(bad, 422, 42201)
    # What the log already holds is replayed as it is.
    assert parse_schema(json.dumps(record("f-x")), as_new=False).text


# -- smaller ones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["bad%0Aname", "tab%09in", "del%7F", "__GLOBAL"])
def test_subject_names_confluent_refuses(client: TestClient, subject: str) -> None:
    # QualifiedSubject.isValidSubject: no ISO control character, not the reserved __GLOBAL.
    assert_error(client.post(f"/subjects/{subject}/versions", json=body(V1)), 422, 42208)
    assert_error(client.put(f"/config/{subject}", json={"compatibility": "FULL"}), 422, 42208)
    assert client.get("/subjects?deleted=true").json() == []


@pytest.mark.parametrize("version", ["0_1", "%201", "1%20", "1.0", "0x1"])
def test_versions_java_does_not_parse(client: TestClient, version: str) -> None:
    register(client, "s", V1)
    assert_error(client.get(f"/subjects/s/versions/{version}"), 422, 42202)
    assert client.get("/subjects/s/versions/+1").json()["version"] == 1  # Integer.parseInt does


def test_referenced_by_a_soft_deleted_version(client: TestClient) -> None:
    register(client, "s", V1, V2)
    client.delete("/subjects/s/versions/1")
    assert client.get("/subjects/s/versions/1/referencedby").json() == []
    assert_error(client.get("/subjects/s/versions/3/referencedby"), 404, 40402)
    assert_error(client.get("/subjects/nope/versions/1/referencedby"), 404, 40401)
