"""``registry plan`` foresees the schema registry refusing one of the store's own event schemas.

``registry apply`` registers the bundled schemas of trades, quotes and metrics before anything
else; a subject whose compatibility level refuses the store's schema makes it fail. ``plan``
asks the registry the same question without registering (Confluent's compatibility test) and
exits 1 with ``apply``'s message. The test gives the quotes topic a name of its own
(``FEATURESTORE_TOPICS__QUOTES``), so the stack's own subjects are left alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient

from featurestore.config import Settings
from featurestore.events import bundled_schema
from tests.integration.definitions.projects import drop_project
from tests.integration.definitions.projects import registry

pytestmark = pytest.mark.integration

_REPO = """
from feast import Entity, ValueType

symbol = Entity(name="symbol", join_keys=["symbol"], value_type=ValueType.STRING)
"""

_STORE_QUOTE = json.loads(bundled_schema("quote").text)
_OTHER_QUOTE = json.dumps({**_STORE_QUOTE, "fields": _STORE_QUOTE["fields"][:2]})
"""The store's own Quote cut to its first two fields (symbol, event_time): the store's, whose
``bid_price`` and others have no default, cannot read what this one wrote."""


@pytest.fixture
def client(stack: Settings) -> Iterator[SchemaRegistryClient]:
    config: dict[str, object] = {"url": stack.schema_registry.url}
    if stack.schema_registry.basic_auth_user_info is not None:
        secret = stack.schema_registry.basic_auth_user_info.get_secret_value()
        config["basic.auth.user.info"] = secret
    with SchemaRegistryClient(config) as made:
        yield made


@pytest.fixture
def quotes_subject(client: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The quotes topic's subject, for this test only, holding a Quote the store's breaks."""
    topic = f"fs_plan_quotes_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FEATURESTORE_TOPICS__QUOTES", topic)
    subject = f"{topic}-value"
    client.register_schema(subject, Schema(_OTHER_QUOTE, "AVRO"))
    client.set_compatibility(subject, "BACKWARD")
    yield subject
    client.delete_subject(subject)
    client.delete_subject(subject, permanent=True)


@pytest.fixture
def project(stack: Settings) -> Iterator[str]:
    name = f"fs_plan_schemas_{uuid.uuid4().hex[:8]}"
    yield name
    drop_project(stack, name, ())


def test_plan_refuses_an_own_schema_the_registry_refuses_as_apply_does(
    client: SchemaRegistryClient, quotes_subject: str, project: str, tmp_path: Path
) -> None:
    (tmp_path / "views.py").write_text(_REPO)
    args = ["--repo", str(tmp_path), "--project", project]

    planned = registry("plan", *args)
    as_json = registry("plan", *args, "--json")
    assert client.get_versions(quotes_subject) == [1]  # the plan registered nothing
    refused = registry("apply", *args)

    assert (planned.exit_code, as_json.exit_code, refused.exit_code) == (1, 1, 1)
    assert "Traceback" not in planned.output
    message = refused.stderr.strip().removeprefix("registry apply failed: ")
    assert message.startswith(f"registering a schema under {quotes_subject!r} at ")
    assert "incompatible with an earlier schema" in message
    assert planned.stderr == f"registry plan: apply would refuse: {message}\n"
    assert planned.stdout.splitlines()[-3:] == [
        "event schemas:",
        f"  ~ event schema {quotes_subject}: apply registers the store's own event schema"
        " here first",
        f"  ! event schema {quotes_subject}: refused: {message}",
    ]
    assert json.loads(as_json.stdout)["refused"] == [message]
    assert client.get_versions(quotes_subject) == [1]

    client.set_compatibility(quotes_subject, "NONE")  # now the registry takes it
    accepted = registry("plan", *args)
    assert (accepted.exit_code, accepted.stderr) == (0, "")
    assert "event schema" not in accepted.stdout
    assert client.get_versions(quotes_subject) == [1]
