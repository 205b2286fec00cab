"""The REST surface: routes, Confluent error bodies and status codes, query-string quirks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from featurestore.config import load_settings
from featurestore.schema_registry import MemoryRecordLog
from featurestore.schema_registry import create_app

V1 = {"type": "record", "name": "Trade", "fields": [{"name": "price", "type": "double"}]}
V2 = {
    "type": "record",
    "name": "Trade",
    "fields": [
        {"name": "price", "type": "double"},
        {"name": "venue", "type": "string", "default": ""},
    ],
}
NO_DEFAULT = {
    "type": "record",
    "name": "Trade",
    "fields": [{"name": "price", "type": "double"}, {"name": "venue", "type": "string"}],
}
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(load_settings({}), log=MemoryRecordLog())) as test_client:
        yield test_client


def body(schema: object) -> dict[str, str]:
    return {"schema": json.dumps(schema)}


def assert_error(response: object, status: int, code: int) -> None:
    from httpx2 import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error_code"] == code, payload
    assert payload["message"]


def test_register_get_and_list(client: TestClient) -> None:
    assert client.get("/subjects").json() == []
    first = client.post("/subjects/t-value/versions", json=body(V1))
    assert first.status_code == 200
    assert first.headers["content-type"] == CONTENT_TYPE
    assert first.json() == {"id": 1}
    # The Confluent content type is accepted as well as plain JSON.
    second = client.post(
        "/subjects/t-value/versions",
        content=json.dumps(body(V2)),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert second.json() == {"id": 2}
    assert client.get("/subjects").json() == ["t-value"]
    assert client.get("/subjects/t-value/versions").json() == [1, 2]
    latest = client.get("/subjects/t-value/versions/latest").json()
    assert latest["subject"] == "t-value" and latest["version"] == 2 and latest["id"] == 2
    assert json.loads(latest["schema"]) == V2
    assert client.get("/subjects/t-value/versions/1").json()["id"] == 1
    assert json.loads(client.get("/subjects/t-value/versions/1/schema").text) == V1
    assert json.loads(client.get("/schemas/ids/2").json()["schema"]) == V2
    assert client.get("/schemas/ids/2/versions").json() == [{"subject": "t-value", "version": 2}]
    assert client.get("/schemas/ids/1/subjects").json() == ["t-value"]
    assert client.get("/schemas/types").json() == ["AVRO"]
    assert len(client.get("/schemas").json()) == 2
    assert client.get("/subjects?subjectPrefix=x").json() == []
    assert client.get("/subjects/t-value/versions?offset=1&limit=1").json() == [2]


def test_lookup(client: TestClient) -> None:
    client.post("/subjects/s/versions", json=body(V1))
    found = client.post("/subjects/s", json=body(V1))
    assert found.status_code == 200
    assert found.json()["version"] == 1 and found.json()["id"] == 1
    assert_error(client.post("/subjects/s", json=body(V2)), 404, 40403)
    assert_error(client.post("/subjects/nope", json=body(V1)), 404, 40401)


def test_errors_have_confluent_codes(client: TestClient) -> None:
    client.post("/subjects/s/versions", json=body(V1))
    assert_error(client.get("/subjects/nope/versions"), 404, 40401)
    assert_error(client.get("/subjects/s/versions/9"), 404, 40402)
    assert_error(client.get("/schemas/ids/99"), 404, 40403)
    assert_error(client.get("/subjects/s/versions/0"), 422, 42202)
    assert_error(client.get("/subjects/s/versions/abc"), 422, 42202)
    assert_error(client.post("/subjects/s/versions", json=body(NO_DEFAULT)), 409, 409)
    assert_error(client.post("/subjects/s/versions", json={"schema": "{nope"}), 422, 42201)
    assert_error(client.post("/subjects/s/versions", json={}), 422, 42201)
    assert_error(
        client.post("/subjects/s/versions", json={"schema": "{}", "schemaType": "PROTOBUF"}),
        422,
        42201,
    )
    assert_error(client.put("/config", json={"compatibility": "SIDEWAYS"}), 422, 42203)
    assert_error(client.post("/subjects/s/versions", content=b"[1"), 400, 400)
    assert_error(client.get("/no/such/route"), 404, 404)
    assert_error(client.put("/mode", json={"mode": "READONLY"}), 422, 42204)


def test_deletes(client: TestClient) -> None:
    client.post("/subjects/s/versions", json=body(V1))
    client.post("/subjects/s/versions", json=body(V2))
    assert_error(client.delete("/subjects/s/versions/1?permanent=true"), 404, 40407)
    assert client.delete("/subjects/s/versions/1").json() == 1
    assert_error(client.delete("/subjects/s/versions/1"), 404, 40406)
    assert client.get("/subjects/s/versions").json() == [2]
    # Booleans arrive as true/True/false/False from the official client.
    assert client.get("/subjects/s/versions?deleted=True").json() == [1, 2]
    assert client.get("/subjects/s/versions?deleted=False").json() == [2]
    assert client.get("/subjects/s/versions?deleted_only=true").json() == [1]
    assert client.get("/subjects/s/versions/1?deleted=true").json()["version"] == 1
    assert_error(client.get("/subjects/s/versions/1"), 404, 40402)
    assert client.post("/subjects/s?deleted=True", json=body(V1)).json()["version"] == 1
    assert_error(client.post("/subjects/s?deleted=False", json=body(V1)), 404, 40403)
    assert client.get("/schemas/ids/1").status_code == 200  # soft-deleted: still served
    assert client.delete("/subjects/s/versions/1?permanent=True").json() == 1
    assert_error(client.get("/schemas/ids/1"), 404, 40403)
    assert_error(client.delete("/subjects/s?permanent=true"), 404, 40405)
    assert client.delete("/subjects/s").json() == [2]
    assert_error(client.delete("/subjects/s"), 404, 40404)
    assert client.get("/subjects").json() == []
    assert client.get("/subjects?deleted=true").json() == ["s"]
    assert_error(client.get("/subjects/s/versions"), 404, 40401)
    assert client.delete("/subjects/s?permanent=true").json() == [2]
    assert client.get("/subjects?deleted=true").json() == []
    assert_error(client.delete("/subjects/s"), 404, 40401)


def test_config(client: TestClient) -> None:
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert client.put("/config", json={"compatibility": "full"}).json() == {"compatibility": "FULL"}
    assert_error(client.get("/config/s"), 404, 40408)
    assert client.get("/config/s?defaultToGlobal=true").json() == {"compatibilityLevel": "FULL"}
    put = client.put("/config/s", json={"compatibilityLevel": "NONE"})
    assert put.json() == {"compatibility": "NONE"}
    assert client.get("/config/s").json() == {"compatibilityLevel": "NONE"}
    assert client.delete("/config/s").json() == {"compatibilityLevel": "NONE"}
    assert client.get("/config/s?defaultToGlobal=True").json() == {"compatibilityLevel": "FULL"}
    assert client.delete("/config").json() == {"compatibilityLevel": "FULL"}
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert_error(client.delete("/config/never"), 404, 40401)


def test_compatibility_endpoints(client: TestClient) -> None:
    url = "/compatibility/subjects/s/versions"
    assert client.post(url, json=body(V1)).json() == {"is_compatible": True}
    # A subject without versions has no latest to break (Confluent: compatible), but a
    # numbered version of it is a missing version.
    assert client.post(f"{url}/latest", json=body(V1)).json() == {"is_compatible": True}
    assert_error(client.post(f"{url}/3", json=body(V1)), 404, 40402)
    client.post("/subjects/s/versions", json=body(V1))
    assert client.post(f"{url}/latest", json=body(V2)).json() == {"is_compatible": True}
    verbose = client.post(f"{url}/1?verbose=True", json=body(NO_DEFAULT)).json()
    assert verbose["is_compatible"] is False
    assert "venue" in verbose["messages"][0]
    assert client.post(f"{url}?verbose=false", json=body(NO_DEFAULT)).json() == {
        "is_compatible": False
    }
    assert_error(client.post(f"{url}/5", json=body(V2)), 404, 40402)


def test_what_the_serializers_call_first(client: TestClient) -> None:
    # AvroSerializer asks for associations before falling back to the topic name strategy.
    answer = client.get("/associations/resources/-/trades?resourceType=topic&associationType=value")
    assert answer.status_code == 200 and answer.json() == []
    assert client.get("/mode").json() == {"mode": "READWRITE"}
    assert client.get("/contexts").json() == ["."]
    assert client.get("/").json() == {}
