"""Two registry processes on one Kafka log behind HTTP basic auth, and ingest through them.

Both instances have the same users. A request without credentials is refused by either; a write
sent to the follower with credentials is forwarded to the leader with them and answered; ingest
registers its schema and writes a real file's trades through the registry with the configured
``basic.auth.user.info``, and a replay decodes every one. A store without credentials is told
what to set.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient

from featurestore.config import SchemaRegistrySettings
from featurestore.config import Settings
from featurestore.errors import ConfigurationError
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import replay_topic
from featurestore.ingest import IngestOptions
from featurestore.ingest import Ingestor
from featurestore.ingest import market_data_dir
from featurestore.ingest import open_event_file
from tests.integration.schema_registry.conftest import RegistryProcess
from tests.integration.schema_registry.test_cluster import wait_for_leader

pytestmark = pytest.mark.integration

USER, PASSWORD = "ingest", "s3cret-pw"
ROWS = 300


def _secured(stack: Settings) -> Settings:
    registry = SchemaRegistrySettings.model_validate(
        {
            **stack.schema_registry.model_dump(by_alias=True),
            "basic_auth_users": f"{USER}:{PASSWORD},other:x",
            "basic_auth_user_info": f"{USER}:{PASSWORD}",
        }
    )
    return stack.model_copy(update={"schema_registry": registry})


def test_two_instances_behind_basic_auth_and_ingest_through_them(
    stack: Settings,
    start_registry: Callable[..., RegistryProcess],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    secured = _secured(stack)
    topic = f"_schemas-auth-{uuid.uuid4().hex[:8]}"
    first, second = start_registry(topic, secured), start_registry(topic, secured)
    leader = wait_for_leader([first, second])
    follower = second if leader is first else first

    for process in (leader, follower):
        refused = requests.get(f"{process.url}/subjects", timeout=5)
        assert refused.status_code == 401 and refused.json()["error_code"] == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
        wrong = requests.get(f"{process.url}/subjects", auth=(USER, "nope"), timeout=5)
        assert wrong.status_code == 401
    # The follower forwards the write with the caller's credentials; the leader checks them too.
    schema = Schema(json.dumps({"type": "record", "name": "A", "fields": []}), "AVRO")
    with SchemaRegistryClient(
        {"url": follower.url, "basic.auth.user.info": f"{USER}:{PASSWORD}", "max.retries": 1}
    ) as client:
        schema_id = client.register_schema("auth-a-value", schema)
    read = requests.get(
        f"{leader.url}/subjects/auth-a-value/versions/latest", auth=(USER, PASSWORD), timeout=5
    )
    assert read.json()["id"] == schema_id

    # Ingest of a real file's first rows, through the follower, with the configured credentials.
    source = market_data_dir() / "20131007_aig_Trade_Tick.csv.gz"
    small = tmp_path / source.name.removesuffix(".gz")
    with gzip.open(source, "rt") as lines:
        small.write_text("".join(line for _, line in zip(range(ROWS), lines, strict=False)))
    through = secured.schema_registry.model_copy(update={"url_override": follower.url})
    options = IngestOptions(
        kafka=stack.kafka.connection,
        topics={"trade": unique_name("auth-trades")},
        dead_letter_topic=unique_name("auth-dlq"),
        partitions=1,
        connect_timeout_s=20,
        delivery_timeout_s=30,
    )
    with ConfluentSchemaStore.from_settings(through) as store:
        with Ingestor(options, store) as ingestor:
            summary = ingestor.run(open_event_file(small))
        assert summary.read == ROWS and summary.sent == ROWS, summary
        replayed = list(replay_topic(stack.kafka.connection, store, summary.topics[0]))
    assert len(replayed) == ROWS and all(isinstance(e, LoggedEvent) for e in replayed)

    with (
        ConfluentSchemaStore(leader.url) as anonymous,
        pytest.raises(ConfigurationError, match="BASIC_AUTH_USER_INFO"),
    ):
        anonymous.latest_schema_text(f"{summary.topics[0]}-value")
