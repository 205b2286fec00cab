"""From a replayed trade file to registered models and anomaly events, through the processors.

A trade file (the seeded synthetic market with 12 injected price spikes and volume bursts, as a
CSV in the store's documented columns) is replayed into a topic of its own with ``featurestore
ingest files``; the processors' backfill turns it into offline feature rows; training reads them
through the point-in-time export and registers the models; then the processors' STREAMING job
re-reads the topic into a second set of tables with the anomaly scorer as its rolling-row hook,
and the anomalies come out of an anomalies topic. Stated target: at least 70 % of the injected
anomalies have an event in their window (the injected minute and the 5 after it), and at least
60 % of the events lie in such a window.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.events import Anomaly
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import replay_topic
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import create_offline_tables
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from models.demo import DemoData
from models.demo import demo_market
from models.publish import AnomalyPublisher
from models.publish import ScoringHook
from models.registry import CHAMPION
from models.registry import ModelRegistry
from models.scoring import ROW_VIEW
from models.scoring import AnomalyScorer
from models.training.anomaly import anomaly_windows
from models.training.run import TrainingContext
from models.training.run import TrainOptions
from models.training.run import TrainReport
from models.training.run import train
from processors.wiring import ProcessorWiring
from tests.e2e.processors_support import ingest_files
from tests.e2e.processors_support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass
class Pipeline:
    settings: Settings
    run: str
    topic: str
    demo: DemoData
    trained: Definitions
    reports: dict[str, TrainReport]
    registry: ModelRegistry

    def definitions(self, label: str) -> Definitions:
        """A project of its own per label, its offline tables created."""
        defs = market_definitions(
            f"e2e_models_{label}_{self.run}",
            table_prefix=f"e2e_models_{self.run}_{label}_",
            source_topic=self.topic,
        )
        with psycopg.connect(self.settings.postgres.dsn, autocommit=True) as conn:
            create_offline_tables(conn, defs)
        return defs


@pytest.fixture(scope="module")
def pipeline(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from processors.options import ProcessorOptions
    from processors.spark import run_backfill

    run = uuid.uuid4().hex[:8]
    topic = f"e2e-models-trades-{run}"
    demo = demo_market(seed=21, symbols=6, minutes=150, rate=10.0, anomalies=12)
    path = Path(tmp_path_factory.mktemp("trades")) / "demo_trades.csv"
    demo.trades.to_csv(path, index=False)
    ingest_files(stack, topic, [path])
    registry = ModelRegistry(stack.mlflow.tracking_uri)
    placeholder = Pipeline(stack, run, topic, demo, None, {}, registry)  # type: ignore[arg-type]
    trained = placeholder.definitions("a")
    placeholder.trained = trained
    try:
        options = ProcessorOptions(name=f"e2e-models-a-{run}", project=trained.project, topic=topic)
        written = run_backfill(stack, options, definitions=trained)
        assert written.records == len(demo.trades) and written.rows_by_view["rolling_1m"] > 0
        context = TrainingContext.from_settings(stack, trained)
        train_options = TrainOptions(
            seed=1, name_prefix=f"e2e-{run}-", experiment=f"e2e-models-{run}",
            injections=demo.injections,
        )  # fmt: skip
        kinds = ["anomaly", "direction", "regime"]
        with context.store:  # leaving closes its connections
            placeholder.reports = {r.kind: r for r in train(kinds, context, train_options)}
        yield placeholder
    finally:
        for report in placeholder.reports.values():
            registry.delete(report.logged.ref.name)
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            for label in ("a", "b"):
                for view in placeholder.definitions(label).views:
                    conn.execute(f'DROP TABLE IF EXISTS "{view.source.table}" CASCADE')
        for folder in (stack.data_dir / "processors").glob(f"e2e-models-*-{run}*"):
            shutil.rmtree(folder, ignore_errors=True)
        admin = AdminClient(stack.kafka.connection.admin())
        for future in admin.delete_topics([topic]).values():
            future.result()


def test_training_from_processed_trades_registers_champions(pipeline: Pipeline) -> None:
    for kind, report in pipeline.reports.items():
        ref = pipeline.registry.alias(report.logged.ref.name, CHAMPION)
        assert ref is not None and ref.tags["model_kind"] == kind
        print(kind, {k: round(v, 3) for k, v in report.metrics.items() if ".test." in k})
    regime = pipeline.reports["regime"].metrics
    assert regime["model.test.auc"] > regime["baseline_majority.test.auc"]


def test_streaming_processor_with_the_scorer_hook_publishes_the_injected_anomalies(
    pipeline: Pipeline,
) -> None:
    from processors.options import ProcessorOptions
    from processors.spark import start_stream

    settings = pipeline.settings
    anomalies = f"e2e-models-anomalies-{pipeline.run}"
    ensure_topics(AdminClient(settings.kafka.connection.admin()), [TopicSpec(anomalies, 2)])
    scored = pipeline.definitions("b")
    offline = PostgresOfflineStore(settings.postgres.dsn, scored)
    scorer = AnomalyScorer(
        pipeline.registry, pipeline.reports["anomaly"].logged.ref.name, store=offline
    )
    publisher = AnomalyPublisher.from_settings(settings, anomalies)
    hook = ScoringHook(scorer, publisher)
    options = ProcessorOptions(
        name=f"e2e-models-b-{pipeline.run}", project=scored.project, topic=pipeline.topic
    )
    handle = start_stream(settings, options, ProcessorWiring(scored, [hook], ROW_VIEW))
    try:
        records = len(pipeline.demo.trades)
        wait_for(lambda: handle.totals.get("records", 0) >= records, 600, "the stream")
    finally:
        handle.stop()
        publisher.close()
        offline.close()

    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        events = [
            item.event
            for item in replay_topic(settings.kafka.connection, store, anomalies)
            if isinstance(item, LoggedEvent) and isinstance(item.event, Anomaly)
        ]
    assert events
    published = pd.DataFrame(
        {"symbol": [e.symbol for e in events], "event_timestamp": [e.event_time for e in events]}
    )
    in_window, ids = anomaly_windows(published, pipeline.demo.injections)
    precision = float(np.mean(in_window))
    recall = len(set(ids[in_window])) / len(pipeline.demo.injections)
    print(f"stream: {len(events)} anomalies, precision {precision:.2f}, event recall {recall:.2f}")
    assert recall >= 0.7 and precision >= 0.6
