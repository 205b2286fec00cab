"""Quotes and metrics end to end: Kafka -> Spark -> PostgreSQL and Redis -> point-in-time export.

Slices of two real quote files (IBM and BAC, 2013-10-07, from the open) and a seeded synthetic
metric stream go through the project's own ingest command into topics of their own. The views
of ``registry/quotes.py`` and ``registry/metrics.py`` are applied under a unique Feast project
and table prefix (:func:`stream_definitions`), and the streaming processor computes each topic
in this process (one SparkSession, shared with the other end-to-end modules). Checked: the
offline rows equal the independent oracle's over the records read back from Kafka (with their
partition, offset and Kafka time), Redis holds each entity's latest row, the point-in-time
export returns at each asked time the latest row at or before it, and a backfill stores what
the stream stored.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.definitions import Definitions
from featurestore.definitions import FeatureView
from featurestore.definitions import stream_definitions
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import replay_topic
from featurestore.events import to_micros
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.online.base import EntityKey
from featurestore.online.base import FeatureRef
from processors.options import ProcessorOptions
from processors.wiring import ProcessorWiring
from tests.e2e.processors_support import MARKET
from tests.e2e.processors_support import checksum
from tests.e2e.processors_support import clean_up
from tests.e2e.processors_support import ingest_files
from tests.e2e.processors_support import read_online
from tests.e2e.processors_support import read_table
from tests.e2e.processors_support import wait_for
from tests.unit.processors.oracle import SourceEvent
from tests.unit.processors.oracle import compute_features

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

QUOTE_SLICES = {  # file -> (first line, number of lines): both from the open, 9:30 New York
    "20131007_ibm_Quote_Tick.csv.gz": (874, 8000),  # ~20 minutes of IBM
    "20131007_bac_Quote_Tick.csv.gz": (3794, 3000),  # ~2 minutes of BAC (a busier book)
}
METRICS = ["--entities", "6", "--rate", "5", "--count", "3000", "--seed", "11",
           "--spike-probability", "0.01", "--start", "2024-03-01T00:00:00", "--fast"]  # fmt: skip
"""Synthetic metrics: 3,000 observations of 6 entities over 10 minutes of event time."""


@dataclass
class Topic:
    """One event topic of the test and the view computed from it."""

    stream: str
    """The stream's name in ``registry/`` (``quotes``, ``metrics``)."""
    name: str
    view: str
    service: str
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Every event as logged: entity, event_us, kafka_ms, partition, offset, event_id and the
    numeric fields the view reads."""


@dataclass
class World:
    settings: Settings
    run: str
    topics: dict[str, Topic]
    projects: dict[str, Definitions] = field(default_factory=dict)

    def definitions(self, label: str) -> Definitions:
        if label not in self.projects:
            defs = stream_definitions(
                {t.stream: t.name for t in self.topics.values()},
                f"e2e_qm_{label}_{self.run}",
                table_prefix=f"e2e_{self.run}_{label}_",
                ttl=timedelta(0),
            )
            apply_definitions(self.settings, defs)
            self.projects[label] = defs
        return self.projects[label]

    def view(self, topic: Topic, label: str = "a") -> FeatureView:
        return self.definitions(label).view(topic.view)

    def options(self, topic: Topic, label: str) -> ProcessorOptions:
        return ProcessorOptions(
            name=f"e2e-qm-{label}-{topic.stream}-{self.run}",
            project=self.definitions(label).project,
            topic=topic.name,
        )


def _quote_slices(folder: Path) -> list[Path]:
    """The slices, named as the vendor names its files (the symbol and day come from the name)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (first, count) in QUOTE_SLICES.items():
        with gzip.open(MARKET / name, "rt") as src:
            lines = [line for i, line in enumerate(src, 1) if first <= i < first + count]
        path = folder / name
        with gzip.open(path, "wt") as out:
            out.writelines(lines)
        paths.append(path)
    return paths


def _ingest_metrics(settings: Settings, topic: str) -> None:
    env = {**settings_env(settings), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "featurestore.cli", "ingest", "synthetic-metrics", "--topic", topic,
         *METRICS],
        check=True, env=env, capture_output=True, timeout=180,
    )  # fmt: skip


def _logged(settings: Settings, topic: str, view: FeatureView) -> pd.DataFrame:
    """Every event of ``topic`` with its log position, read back by the project's replay."""
    assert view.stream is not None
    source = view.stream.source
    roles = {source.entity_field, source.timestamp_field, source.id_field}
    numeric = [f for f in source.fields if f not in roles]
    rows = []
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        for item in replay_topic(settings.kafka.connection, store, topic):
            assert isinstance(item, LoggedEvent), item  # the ingest sends only valid events
            event = item.event
            rows.append(
                {
                    "entity": getattr(event, source.entity_field),
                    "event_us": to_micros(getattr(event, source.timestamp_field)),
                    "kafka_ms": item.timestamp_ms,
                    "partition": item.partition,
                    "offset": item.offset,
                    "event_id": getattr(event, source.id_field or ""),
                    **{name: float(getattr(event, name)) for name in numeric},
                }
            )
    return pd.DataFrame(rows).sort_values(["partition", "offset"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run = uuid.uuid4().hex[:8]
    topics = {
        "quotes": Topic("quotes", f"e2e-quotes-{run}", "quotes_1m", "quote_features_v1"),
        "metrics": Topic("metrics", f"e2e-metrics-{run}", "metric_rolling_1m",
                         "metric_features_v1"),
    }  # fmt: skip
    ingest_files(stack, topics["quotes"].name, _quote_slices(tmp_path_factory.mktemp("quotes")))
    _ingest_metrics(stack, topics["metrics"].name)
    w = World(stack, run, topics)
    for topic in topics.values():  # apply after ingest: apply needs each topic's schema
        topic.events = _logged(stack, topic.name, w.view(topic))
    yield w
    clean_up(stack, w.projects.values(), f"e2e-qm-*-{run}*", [t.name for t in topics.values()])


def _stream(world: World, topic: Topic, label: str) -> dict[str, int]:
    """Run the streaming job in this process until it has read every record, then stop it."""
    from processors.spark import start_stream

    handle = start_stream(
        world.settings, world.options(topic, label), ProcessorWiring(world.definitions(label))
    )
    try:
        wait_for(
            lambda: handle.totals.get("records", 0) >= len(topic.events), 400, f"{topic.stream}"
        )
    finally:
        handle.stop()
    assert handle.totals["records"] == len(topic.events)
    return dict(handle.totals)


@pytest.fixture(scope="module")
def streamed(world: World) -> dict[str, dict[str, int]]:
    """Each topic streamed into project ``a``: the stream's totals per topic."""
    return {stream: _stream(world, topic, "a") for stream, topic in world.topics.items()}


@dataclass(frozen=True)
class Expected:
    rows: pd.DataFrame
    """The oracle's rows: entity, event_us, created_ms, the features, first and last offset."""
    late: int
    duplicates: int


def _oracle(world: World, topic: Topic) -> Expected:
    view = world.view(topic)
    fields = [c for c in topic.events.columns if c not in
              ("entity", "event_us", "kafka_ms", "partition", "offset", "event_id")]  # fmt: skip
    events = [
        SourceEvent(str(r["entity"]), int(r["event_us"]), int(r["kafka_ms"]), int(r["partition"]),
                    int(r["offset"]), str(r["event_id"]), {f: float(r[f]) for f in fields})
        for r in topic.events.to_dict("records")
    ]  # fmt: skip
    result = compute_features([view], events)
    rows = [
        {"entity": entity, "event_us": at, "created_ms": row.created_ms,
         "first_offset": row.first_offset, "last_offset": row.last_offset,
         **{k: (np.nan if v is None else v) for k, v in row.values.items()}}
        for (entity, at), row in result.rows[view.name].items()
    ]  # fmt: skip
    frame = pd.DataFrame(rows).sort_values(["entity", "event_us"]).reset_index(drop=True)
    return Expected(frame, len(result.late), len(result.duplicates))


def _same(got: Any, want: Any, where: object) -> None:
    if want is None or (isinstance(want, float) and np.isnan(want)):
        assert got is None or pd.isna(got), where
    else:
        assert got is not None and not pd.isna(got), where
        assert float(got) == pytest.approx(float(want), rel=1e-9, abs=1e-12), where


@pytest.mark.parametrize("stream", ["quotes", "metrics"])
def test_offline_rows_equal_the_independent_oracle(
    world: World, streamed: dict[str, dict[str, int]], stream: str
) -> None:
    topic = world.topics[stream]
    view = world.view(topic)
    key = world.definitions("a").entity(view.entities[0]).join_key
    want = _oracle(world, topic)
    totals = streamed[stream]
    assert (totals["late"], totals["duplicates"]) == (want.late, want.duplicates)
    got = read_table(world.settings, view.source.table, key).rename(
        columns={key: "entity", "source_offset_start": "first_offset",
                 "source_offset_end": "last_offset"}
    )  # fmt: skip
    entities = set(topic.events["entity"])
    assert set(got["entity"]) == entities
    assert len(entities) == (2 if stream == "quotes" else 6)
    assert len(got) == len(want.rows) >= 20
    cols = ["entity", "event_us", "created_ms", *view.feature_names, "first_offset", "last_offset"]
    pd.testing.assert_frame_equal(
        got.sort_values(["entity", "event_us"])[cols].reset_index(drop=True), want.rows[cols],
        check_dtype=False, rtol=1e-9, atol=1e-12,
    )  # fmt: skip
    # The features are not trivially empty: every column has values somewhere.
    assert all(got[name].notna().any() for name in view.feature_names)


def _online(world: World, topic: Topic, entities: list[str]) -> dict[str, dict[str, Any]]:
    """Latest online rows per entity: {entity: {feature: value, "_ts": event time}}."""
    defs = world.definitions("a")
    view = world.view(topic)
    key = defs.entity(view.entities[0]).join_key
    refs = [FeatureRef(view.name, name) for name in view.feature_names]
    keys = [EntityKey.of(**{key: e}) for e in entities]
    result = read_online(world.settings, defs, topic.name, keys, refs)
    out: dict[str, dict[str, Any]] = {e: {} for e in entities}
    for ref, column in zip(result.refs, result.columns, strict=True):
        for entity, value in zip(entities, column, strict=True):
            out[entity][ref.feature] = value.value
            out[entity]["_ts"] = value.event_time
    return out


def _us(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))


@pytest.mark.parametrize("stream", ["quotes", "metrics"])
def test_online_store_holds_each_entity_s_latest_row(
    world: World, streamed: dict[str, dict[str, int]], stream: str
) -> None:
    topic = world.topics[stream]
    want = _oracle(world, topic).rows
    entities = sorted(set(topic.events["entity"]))
    online = _online(world, topic, entities)
    for entity in entities:
        last = want[want["entity"] == entity].iloc[-1]
        assert _us(online[entity]["_ts"]) == last["event_us"], entity
        for name in world.view(topic).feature_names:
            _same(online[entity][name], last[name], (entity, name))


@pytest.mark.parametrize("stream", ["quotes", "metrics"])
def test_point_in_time_export_returns_the_latest_row_at_or_before_each_time(
    world: World, streamed: dict[str, dict[str, int]], stream: str
) -> None:
    topic = world.topics[stream]
    defs = world.definitions("a")
    view = world.view(topic)
    key = defs.entity(view.entities[0]).join_key
    want = _oracle(world, topic).rows
    asked: list[tuple[str, int]] = []
    for entity in sorted(set(topic.events["entity"])):
        times = want.loc[want["entity"] == entity, "event_us"].tolist()
        middle = times[len(times) // 2]
        asked += [
            (entity, times[0] - 1),  # before the first row: nothing
            (entity, times[0]),  # exactly at a row's time: that row
            (entity, middle + 30_000_000),  # between rows: the earlier one
            (entity, middle - 1),  # just before a row: the one before it
            (entity, times[-1] + 86_400_000_000),  # long after (TTL 0: forever): the last
        ]
    entity_rows = pd.DataFrame(
        {key: [e for e, _ in asked],
         "event_timestamp": [pd.Timestamp(t, unit="us", tz="UTC") for _, t in asked]}
    )  # fmt: skip
    with PostgresOfflineStore(world.settings.postgres.dsn, defs) as store:
        exported = store.to_pandas(entity_rows, TrainingRequest(feature_service=topic.service))
    assert len(exported) == len(asked)
    assert exported[key].tolist() == [e for e, _ in asked]  # in the order asked
    names = [r.feature for r in defs.service(topic.service).features]
    assert names == list(view.feature_names)
    for i, (entity, at) in enumerate(asked):
        rows = want[(want["entity"] == entity) & (want["event_us"] <= at)]
        for name in names:
            expected = rows.iloc[-1][name] if len(rows) else None
            _same(exported[name].iloc[i], expected, (entity, at, name))


def test_feast_sdk_reads_both_views_online(
    world: World, streamed: dict[str, dict[str, int]]
) -> None:
    from featurestore.definitions.feast_codec import feature_store

    with feature_store(world.settings, world.definitions("a").project) as store:
        for stream, features in (
            ("quotes", ["mid_last", "spread_bps_5m", "quote_count_1m"]),
            ("metrics", ["value_last", "value_zscore_5m", "value_count_5m"]),
        ):
            topic = world.topics[stream]
            view = world.view(topic)
            key = world.definitions("a").entity(view.entities[0]).join_key
            entities = sorted(set(topic.events["entity"]))
            got = store.get_online_features(
                features=[f"{view.name}:{f}" for f in features],
                entity_rows=[{key: e} for e in entities],
            ).to_dict()
            online = _online(world, topic, entities)
            for name in features:
                assert got[name] == [online[e][name] for e in entities], (stream, name)


@pytest.mark.parametrize("stream", ["quotes", "metrics"])  # quotes: two partitions are empty
def test_backfill_gives_the_same_rows_as_the_stream(
    world: World, streamed: dict[str, dict[str, int]], stream: str
) -> None:
    from processors.spark import run_backfill

    topic = world.topics[stream]
    report = run_backfill(
        world.settings, world.options(topic, "b"), definitions=world.definitions("b")
    )
    assert report.records == len(topic.events)
    key = world.definitions("b").entity(world.view(topic, "b").entities[0]).join_key
    assert checksum(world.settings, world.view(topic, "b").source.table, key) == checksum(
        world.settings, world.view(topic).source.table, key
    )
