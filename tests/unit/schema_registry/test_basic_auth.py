"""The registry behind HTTP basic auth, over a real socket (uvicorn on a free port).

With users configured, a request without credentials or with wrong ones gets 401, a
``WWW-Authenticate: Basic`` challenge and Confluent's error body; ``/health`` stays open.
Confluent's own client (``basic.auth.user.info``) and the store's serializer path
(:class:`ConfluentSchemaStore` from the settings) work with the credentials.
"""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import pytest
import requests
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.events import AvroDeserializer
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import Trade
from featurestore.schema_registry import MemoryRecordLog
from featurestore.schema_registry import create_app
from tests.ports import free_port
from tests.unit.schema_registry.threaded_registry import serving

USERS = "FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USERS"
USER_INFO = "FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO"
SCHEMA = json.dumps({"type": "record", "name": "R", "fields": [{"name": "x", "type": "long"}]})


@pytest.fixture(scope="module")
def registry() -> Iterator[Settings]:
    """A registry with two users; the settings its clients use (as ``alice``)."""
    port = free_port()
    settings = load_settings(
        {
            "FEATURESTORE_SCHEMA_REGISTRY__PORT": str(port),
            USERS: "alice:w0nder:land,bob:bu1lder",
            USER_INFO: "alice:w0nder:land",
        }
    )
    with serving(create_app(settings, log=MemoryRecordLog()), port):
        yield settings


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        (None, "needs HTTP basic credentials"),
        (("alice", "wrong"), "user name or password is not valid"),
        (("mallory", "w0nder:land"), "user name or password is not valid"),
    ],
)
def test_refused_without_the_right_credentials(
    registry: Settings, auth: tuple[str, str] | None, says: str
) -> None:
    url = registry.schema_registry.url
    for method, path in (("GET", "/subjects"), ("POST", "/subjects/x/versions"), ("GET", "/")):
        reply = requests.request(
            method, f"{url}{path}", auth=auth, data=json.dumps({"schema": SCHEMA}), timeout=5
        )
        assert reply.status_code == 401, (method, path)
        assert reply.headers["WWW-Authenticate"].startswith("Basic realm=")
        body = reply.json()
        assert body["error_code"] == 401 and says in body["message"], body
        assert "w0nder" not in reply.text
    assert (
        requests.get(f"{url}/subjects", headers={"Authorization": "Bearer x"}, timeout=5)
        .json()["message"]
        .endswith("is not 'Basic <base64 of user:password>'")
    )
    # Health stays open for the supervisor and orchestrators' probes.
    assert requests.get(f"{url}/health", timeout=5).status_code == 200


def test_confluent_client_and_plain_http_with_credentials(registry: Settings) -> None:
    url = registry.schema_registry.url
    client = SchemaRegistryClient(
        {"url": url, "basic.auth.user.info": "bob:bu1lder", "max.retries": 0}
    )
    with client:
        schema_id = client.register_schema("auth-value", Schema(SCHEMA, "AVRO"))
        assert json.loads(client.get_schema(schema_id).schema_str or "") == json.loads(SCHEMA)
    headers = registry.schema_registry.auth_header
    assert requests.get(f"{url}/subjects", headers=headers, timeout=5).json() == ["auth-value"]
    anonymous = SchemaRegistryClient({"url": url, "max.retries": 0})
    with anonymous, pytest.raises(SchemaRegistryError) as info:
        anonymous.get_subjects()
    assert info.value.http_status_code == 401


def test_the_stores_serializer_path_with_credentials(registry: Settings) -> None:
    with ConfluentSchemaStore.from_settings(registry.schema_registry) as store:
        serializer = AvroSerializer.for_topic(store, "auth-trades", Trade)
        trade = Trade("IBM", 151.25, 10, datetime(2026, 1, 2, 15, 30, tzinfo=UTC), "N", "t1")
        assert AvroDeserializer(store).decode(serializer.encode(trade)) == trade
    # Without credentials the store says what to set, and it is not worth retrying.
    with (
        ConfluentSchemaStore(registry.schema_registry.url) as anonymous,
        pytest.raises(ConfigurationError, match="BASIC_AUTH_USER_INFO") as info,
    ):
        anonymous.register("auth-trades-value", SCHEMA)
    assert not info.value.retryable


def test_the_store_closes_the_client_it_made_and_not_a_given_one(registry: Settings) -> None:
    gc.collect()  # what earlier tests left to the collector warns now, not in the recording
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with ConfluentSchemaStore.from_settings(registry.schema_registry) as store:
            schema_id = store.register("closing-value", SCHEMA)
        del store
        gc.collect()
    assert [str(w.message) for w in caught if "unclosed" in str(w.message)] == []

    info = registry.schema_registry.basic_auth_user_info
    assert info is not None
    config = {"url": registry.schema_registry.url, "basic.auth.user.info": info.get_secret_value()}
    with SchemaRegistryClient(config) as client:
        with ConfluentSchemaStore(registry.schema_registry.url, client=client) as given:
            assert json.loads(given.schema_text(schema_id)) == json.loads(SCHEMA)
        assert "closing-value" in client.get_subjects()  # the given client is still open
