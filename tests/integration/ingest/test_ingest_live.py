from __future__ import annotations

import gzip
import json
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.events import AvroDeserializer
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import Trade
from featurestore.events import parse_schema_text
from featurestore.events import replay_topic
from featurestore.events.schemas import bundled_schema
from featurestore.ingest import DEAD_LETTER_REASON
from featurestore.ingest import IngestOptions
from featurestore.ingest import Ingestor
from featurestore.ingest import RecordKind
from featurestore.ingest import market_data_dir
from featurestore.ingest import open_event_file
from featurestore.ingest import producer_config
from featurestore.ingest.kafka import EventProducer
from featurestore.ingest.kafka import wait_for_brokers
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from tests.integration.ingest.support import read_raw
from tests.integration.ingest.support import stack_ingestors

pytestmark = pytest.mark.integration

REAL_FILE = "20131007_aig_Trade_Tick.csv.gz"


@pytest.fixture
def ingestor_factory(stack: Settings, unique_name: Callable[[str], str]):
    with stack_ingestors(stack) as make_on_stack:

        def make(topic: str | None = None, dlq: str | None = None) -> Ingestor:
            topics: dict[RecordKind, str] = {"trade": topic or unique_name("it-trades")}
            return make_on_stack(topics, dlq or unique_name("it-dlq"))

        yield make


def test_real_file_every_event_accounted_for(stack: Settings, ingestor_factory) -> None:
    path = market_data_dir() / REAL_FILE
    ingestor = ingestor_factory()
    summary = ingestor.run(open_event_file(path))
    assert summary.read == 25351
    assert summary.sent + summary.dead_lettered == summary.read
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        events = [e for e in replay_topic(stack.kafka.connection, store, summary.topics[0])]
    assert all(isinstance(e, LoggedEvent) for e in events)
    assert len(events) == summary.sent
    dead = read_raw(stack, summary.dead_letter_topic) if summary.dead_lettered else []
    assert len(events) + len(dead) == summary.read
    ids = {e.event.trade_id for e in events}  # type: ignore[union-attr]
    assert len(ids) == summary.sent
    assert {e.key for e in events if isinstance(e, LoggedEvent)} == {b"AIG"}


def test_bad_rows_of_a_real_file_go_to_the_dead_letter_topic(
    stack: Settings, ingestor_factory, tmp_path: Path
) -> None:
    with gzip.open(market_data_dir() / REAL_FILE, "rt") as handle:
        lines = [next(handle).strip() for _ in range(2000)]
    bad = {10: "suspicious", 20: "unparsable", 30: "non_positive_price", 40: "negative_size"}
    cols = lines[9].split(",")
    lines[9] = ",".join([*cols[:5], "1"])
    lines[19] = "not,a,trade"
    cols = lines[29].split(",")
    lines[29] = ",".join([cols[0], "-5", *cols[2:]])
    cols = lines[39].split(",")
    lines[39] = ",".join([*cols[:2], "-100", *cols[3:]])
    path = tmp_path / REAL_FILE
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")

    summary = ingestor_factory().run(open_event_file(path))
    assert (summary.read, summary.sent, summary.dead_lettered) == (2000, 1996, 4)
    assert dict(summary.reasons) == {code: 1 for code in bad.values()}
    dead = read_raw(stack, summary.dead_letter_topic)
    assert len(dead) == 4
    by_line = {int(h["x-source-line"]): (value, h) for _, _, value, h in dead}
    assert set(by_line) == set(bad)
    for line, code in bad.items():
        value, headers = by_line[line]
        assert value == lines[line - 1].encode()
        assert headers[DEAD_LETTER_REASON].decode().startswith(code)
        assert headers["x-source"] == REAL_FILE.encode()
        assert headers["x-original-topic"] == summary.topics[0].encode()
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        replayed = sum(1 for _ in replay_topic(stack.kafka.connection, store, summary.topics[0]))
    assert replayed == 1996


def test_replaying_a_file_twice_gives_the_same_records_per_key(
    stack: Settings, ingestor_factory, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    # Three symbols, merged by event time, a few thousand rows each.
    topic, dlq = unique_name("it-twice"), unique_name("it-twice-dlq")
    sources = []
    for name in (
        "20131008_aig_Trade_Tick.csv.gz",
        "20131008_bac_Trade_Tick.csv.gz",
        "20131008_ibm_Trade_Tick.csv.gz",
    ):
        with gzip.open(market_data_dir() / name, "rt") as handle:
            head = [next(handle) for _ in range(3000)]
        path = tmp_path / name
        with gzip.open(path, "wt") as handle:
            handle.writelines(head)
        sources.append(path)
    from featurestore.ingest import merge_by_event_time

    for _ in range(2):
        summary = ingestor_factory(topic, dlq).run(
            merge_by_event_time(open_event_file(p) for p in sources)
        )
        assert summary.sent == 9000
    per_key: dict[bytes | None, list[bytes]] = defaultdict(list)
    for _, key, value, _ in read_raw(stack, topic):
        per_key[key].append(value)
    assert set(per_key) == {b"AIG", b"BAC", b"IBM"}
    for values in per_key.values():
        assert len(values) == 6000
        assert values[:3000] == values[3000:]
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        decoder = AvroDeserializer(store)
        ids = [decoder.decode(v).trade_id for v in per_key[b"IBM"]]  # type: ignore[union-attr]
    assert ids[:3000] == ids[3000:]
    assert len(set(ids)) == 3000


def test_two_schema_versions_on_the_live_log(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("it-evolve")
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        admin = wait_for_brokers(stack.kafka.connection, timeout_s=20)
        ensure_topics(admin, [TopicSpec(topic, 2)])
        raw_v2 = json.loads(bundled_schema("trade").text)
        raw_v2["fields"].append(
            {"name": "venue_sequence", "type": ["null", "long"], "default": None}
        )
        v2_schema = parse_schema_text(json.dumps(raw_v2))
        v1 = AvroSerializer.for_topic(store, topic, Trade)
        v2 = AvroSerializer.for_topic(store, topic, Trade, v2_schema)
        assert v1.schema_id != v2.schema_id

        from datetime import UTC
        from datetime import datetime
        from datetime import timedelta

        t0 = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
        producer = EventProducer(producer_config(stack.kafka.connection))
        for i in range(200):
            trade = Trade(
                "IBM", 180.0 + i / 100, 100, t0 + timedelta(seconds=i), "N", f"evolve:{i}"
            )
            if i % 2:
                value = v2.encode_wire({**v2.codec.to_wire(trade), "venue_sequence": i})
            else:
                value = v1.encode(trade)
            producer.produce(topic, value, key=b"IBM")
        assert producer.flush(30) == 0
        assert producer.report.count(topic) == 200

        with ConfluentSchemaStore.from_settings(stack.schema_registry) as fresh:
            decoded = list(replay_topic(stack.kafka.connection, fresh, topic))
        assert [e.event.trade_id for e in decoded] == [f"evolve:{i}" for i in range(200)]  # type: ignore[union-attr]
        assert {e.schema_id for e in decoded} == {v1.schema_id, v2.schema_id}  # type: ignore[union-attr]
        as_v2 = list(replay_topic(stack.kafka.connection, store, topic, reader=v2_schema))
        assert all(isinstance(e, LoggedEvent) for e in as_v2)


def test_a_silent_registry_ends_the_ingest_after_the_connect_timeout(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    """Kafka answers, the registry accepts and never answers: the ingest says so and ends
    (it waited for ever before: no timeout on the registry's requests, none on the wait)."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        options = IngestOptions(
            kafka=stack.kafka.connection,
            topics={"trade": unique_name("it-trades")},
            dead_letter_topic=unique_name("it-dlq"),
            partitions=stack.kafka.default_partitions,
            connect_timeout_s=3,
        )
        waits: list[str] = []
        started = time.monotonic()
        with (
            ConfluentSchemaStore(url, timeout_s=0.5, max_retries=0) as store,
            pytest.raises(BackendUnavailableError) as caught,
        ):
            Ingestor(options, store, on_wait=waits.append)
        took = time.monotonic() - started
    assert took < 30
    assert str(caught.value).startswith("the schema registry did not answer within 3 s:")
    assert f"schema registry at {url} is unreachable: timed out" in str(caught.value)
    assert waits and "schema-registry away" in waits[0]
