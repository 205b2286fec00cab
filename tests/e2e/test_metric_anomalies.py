"""Anomalies in generic metrics end to end: events -> processor -> scorer -> topic -> stream.

Eight hours of one value a minute for 14 entities (6,720 metric events, one topic of this test's
own): three entities per shape carry two injected anomalies each (spikes, level shifts, trend
changes, seasonality breaks; :mod:`models.anomaly.shapes`), two are clean. The events go through
the store's ingest into Kafka; the Kafka engine computes ``metric_rolling_1m`` from the
declared view into tables of this test; the scorer, as ``featurestore score --follow
--register-missing`` runs it (in this process), fits a detector on the view's rows (no labels),
registers it in MLflow under a model name of this test, loads it back as the view's champion,
scores every row and publishes the anomalies to a topic of this test; StreamAnomalies serves them
from the start time.

Stated bounds (a detector that never fires fails recall, one that fires at noise fails
precision; the full evaluation is in ``bench/RESULTS.md``): at least 5 of the 6 spikes and of
the 6 level shifts found (windows as in the evaluation), overall event recall >= 0.8, precision
(flagged rows inside an anomaly's window) >= 0.35, and at most one flag on the clean entities.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from featurestore_client import FeatureStoreClient
from psycopg import sql

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.definitions import Definitions
from featurestore.definitions import stream_definitions
from featurestore.errors import NotFoundError
from featurestore.events import Anomaly
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import replay_topic
from featurestore.ingest import IngestOptions
from featurestore.ingest import Ingestor
from featurestore.ingest import SourceRecord
from featurestore.offline.tables import table_identifier
from featurestore.online import StaticCatalog
from featurestore.service.testing import ServerThread
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from models.anomaly.shapes import SHAPES
from models.anomaly.shapes import Series
from models.anomaly.shapes import Shape
from models.anomaly.shapes import make_series
from models.registry import ModelRegistry
from processors.kafka_engine import start_consumer
from processors.options import ProcessorOptions
from processors.wiring import ProcessorWiring
from tests.e2e.processors_support import clean_up
from tests.e2e.processors_support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

T0 = datetime(2024, 5, 1, tzinfo=UTC)
STEPS, SEASON, PER_SHAPE, CLEAN = 480, 60, 3, 2
VIEW = "metric_rolling_1m"


@dataclass
class World:
    settings: Settings
    run: str
    topic: str
    anomalies_topic: str
    definitions: Definitions
    series: dict[str, tuple[Shape, Series]]
    model: str


def _series() -> dict[str, tuple[Shape, Series]]:
    rng = np.random.default_rng(17)
    out: dict[str, tuple[Shape, Series]] = {}
    for shape in SHAPES:
        for i in range(PER_SHAPE):
            out[f"{shape}-{i}"] = (shape, make_series(rng, shape, steps=STEPS, per_series=2))
    for i in range(CLEAN):
        out[f"clean-{i}"] = ("none", make_series(rng, "none", steps=STEPS))
    return out


def _records(series: dict[str, tuple[Shape, Series]]) -> Iterator[SourceRecord]:
    """One observation per entity and minute, 30 s into it; in event-time order."""
    line = 0
    for step in range(STEPS):
        at = T0 + timedelta(minutes=step, seconds=30)
        for entity, (_, one) in series.items():
            line += 1
            fields = {"entity": entity, "event_time": at, "value": float(one.values[step]),
                      "name": "value", "tags": {}, "metric_id": f"{entity}:{step}"}  # fmt: skip
            yield SourceRecord("injected-anomalies", line, fields, kind="metric")


@pytest.fixture(scope="module")
def world(stack: Settings) -> Iterator[World]:
    run = uuid.uuid4().hex[:8]
    topic, anomalies_topic = f"e2e-anom-metrics-{run}", f"e2e-anom-out-{run}"
    series = _series()
    options = IngestOptions(
        stack.kafka.connection, {"metric": topic}, stack.topics.dead_letter,
        partitions=2, replication_factor=stack.kafka.replication_factor,
    )  # fmt: skip
    with (
        ConfluentSchemaStore.from_settings(stack.schema_registry) as store,
        Ingestor(options, store) as ingestor,
    ):
        summary = ingestor.run(_records(series))
    assert summary.sent == STEPS * len(series)
    ensure_topics(AdminClient(stack.kafka.connection.admin()), [TopicSpec(anomalies_topic, 2)])
    definitions = stream_definitions(
        {"metrics": topic}, f"e2e_anom_{run}", table_prefix=f"e2e_{run}_", ttl=timedelta(0)
    )
    apply_definitions(stack, definitions)  # after ingest: apply needs the topic's schema
    model = f"e2e-{run}-anomaly-metrics"
    yield World(stack, run, topic, anomalies_topic, definitions, series, model)
    with contextlib.suppress(NotFoundError):  # registered by the scorer, unless it failed
        ModelRegistry(stack.mlflow.tracking_uri).delete(model)
    clean_up(stack, [definitions], f"e2e-anom-{run}*", [topic, anomalies_topic])


def _rows_stored(world: World) -> int:
    table = world.definitions.view(VIEW).source.table
    query = sql.SQL("SELECT count(*) FROM {}").format(table_identifier(table))
    with psycopg.connect(world.settings.postgres.dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _process(world: World) -> int:
    """The Kafka engine computes the view from every event; returns the rows stored."""
    options = ProcessorOptions(
        name=f"e2e-anom-{world.run}", project=world.definitions.project, topic=world.topic,
        engine="kafka",
    )  # fmt: skip
    handle = start_consumer(world.settings, options, ProcessorWiring(world.definitions))
    try:
        wait_for(lambda: handle.totals.get("records", 0) >= STEPS * len(world.series), 120, "rows")
    finally:
        handle.stop()
    return _rows_stored(world)


def _score(world: World, rows: int) -> str:
    """What ``featurestore score --follow --register-missing`` does, in this process.

    (The command itself, as the stack runs it, is started by the scorer service's test; here
    its imports would cost more than the scoring.) Returns the registered model's URI.
    """
    from featurestore.offline import PostgresOfflineStore
    from models.anomaly.views import ensure_detector
    from models.anomaly.views import scoring_for_view
    from models.follow import follow_table
    from models.publish import AnomalyPublisher

    settings, dsn = world.settings, world.settings.postgres.dsn
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    logged = ensure_detector(
        world.definitions, registry, dsn, VIEW, ["value_mean_1m"], model_name=world.model
    )
    assert logged is not None and logged.promoted
    store = PostgresOfflineStore(dsn, world.definitions)
    scoring = scoring_for_view(
        world.definitions, registry, dsn, store, VIEW, model_name=world.model
    )
    publisher = AnomalyPublisher.from_settings(settings, world.anomalies_topic)
    stop = threading.Event()
    scored: list[int] = []
    # A row's created_timestamp is its last event's Kafka time, which ingest sets to the event
    # time: the scorer must look back to the events' times, not to when they were sent.
    follower = threading.Thread(
        target=follow_table,
        args=(scoring, publisher, dsn, scoring.view),
        kwargs={"since": T0 - timedelta(hours=1), "poll_s": 0.2, "stop": stop,
                "on_batch": lambda n, _: scored.append(n), "entity_key": scoring.entity_key},
    )  # fmt: skip
    follower.start()
    try:
        wait_for(lambda: sum(scored) >= rows or not follower.is_alive(), 120, "the scorer")
    finally:
        stop.set()
        follower.join(30)
        publisher.close()
        store.close()
    assert sum(scored) == rows
    return logged.ref.uri


@dataclass(frozen=True)
class Found:
    anomalies: list[Anomaly]
    model_uri: str


@pytest.fixture(scope="module")
def found(world: World) -> Found:
    began = time.monotonic()
    rows = _process(world)
    assert rows >= (STEPS - 10) * len(world.series)
    processed = time.monotonic()
    uri = _score(world, rows)
    print(f"processor {processed - began:.0f} s, scorer {time.monotonic() - processed:.0f} s")
    events = []
    with ConfluentSchemaStore.from_settings(world.settings.schema_registry) as store:
        for item in replay_topic(world.settings.kafka.connection, store, world.anomalies_topic):
            assert isinstance(item, LoggedEvent), item
            assert isinstance(item.event, Anomaly)
            events.append(item.event)
    return Found(events, uri)


def _row_time(step: int) -> datetime:
    """The view's row holding minute ``step``: the end of that minute."""
    return T0 + timedelta(minutes=step + 1)


def test_injected_anomalies_are_found_in_the_anomalies_topic(world: World, found: Found) -> None:
    events = found.anomalies
    assert events, "no anomaly was published"
    assert {f"models:/{e.model_name}/{e.model_version}" for e in events} == {found.model_uri}
    assert all(e.threshold is not None and e.score >= e.threshold for e in events)
    assert all(f"{VIEW}__value_mean_1m" in e.features for e in events)
    flagged = {(e.symbol, e.event_time) for e in events}
    assert len(flagged) == len(events)  # one event per flagged row
    inside = 0
    recall: dict[str, list[bool]] = {shape: [] for shape in SHAPES}
    for entity, (shape, one) in world.series.items():
        times = {t for (e, t) in flagged if e == entity}
        if shape == "none":
            assert len(times) <= 1, (entity, sorted(times))
            continue
        for anomaly in one.injected:
            window = {_row_time(s) for s in range(anomaly.onset, anomaly.end + 1)}
            recall[shape].append(bool(times & window))
        windows = {_row_time(s) for a in one.injected for s in range(a.onset, a.end + 1)}
        inside += len(times & windows)
    precision = inside / len(events)
    per_shape = {shape: float(np.mean(hits)) for shape, hits in recall.items()}
    overall = float(np.mean([h for hits in recall.values() for h in hits]))
    print(f"{len(events)} anomalies: precision {precision:.2f}, recall {overall:.2f} {per_shape}")
    assert per_shape["spike"] >= 5 / 6 and per_shape["level_shift"] >= 5 / 6, per_shape
    assert overall >= 0.8, per_shape
    assert precision >= 0.35  # flagging every row would score about 0.1


def test_stream_anomalies_serves_them_from_the_start_time(world: World, found: Found) -> None:
    settings = world.settings.model_copy(
        update={"topics": TopicSettings(anomalies=world.anomalies_topic)}
    )
    server = ServerThread(settings, StaticCatalog(world.definitions.project))
    want = {e.anomaly_id for e in found.anomalies}
    got: dict[str, str] = {}
    try:
        with (
            FeatureStoreClient(server.target) as client,
            client.stream_anomalies(start_time=T0) as stream,
        ):

            def read() -> None:
                for anomaly in stream:
                    got[anomaly.anomaly_id] = anomaly.symbol

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            deadline = time.monotonic() + 60
            while len(got) < len(want) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # nothing more than the topic holds comes after
    finally:
        server.stop(grace_s=0)
    assert set(got) == want
    assert set(got.values()) <= set(world.series)
