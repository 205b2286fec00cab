"""Demo trades with injected anomalies -> reference features in tables of this run -> models.

Everything is named after a run id: the Feast project, the tables, the MLflow experiment and
registered models, the anomalies topic; all are removed at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.offline.tables import table_identifier
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from models.demo import DemoData
from models.demo import demo_definitions
from models.demo import demo_market
from models.demo import write_features
from models.registry import ModelRegistry
from models.training.run import TrainingContext
from models.training.run import TrainOptions
from models.training.run import TrainReport
from models.training.run import train


@dataclass
class ModelsWorld:
    settings: Settings
    run: str
    definitions: Definitions
    demo: DemoData
    context: TrainingContext
    options: TrainOptions
    reports: dict[str, TrainReport]

    @property
    def registry(self) -> ModelRegistry:
        return self.context.registry


@pytest.fixture(scope="package")
def world(stack: Settings) -> Iterator[ModelsWorld]:
    run = uuid.uuid4().hex[:8]
    definitions = demo_definitions(f"test_models_{run}", f"m{run}_")
    apply_definitions(stack, definitions)  # the CLI reads definitions from Feast's registry
    demo = demo_market(seed=5, symbols=8, minutes=240, anomalies=16)
    write_features(stack.postgres.dsn, definitions, demo.trades)
    context = TrainingContext.from_settings(stack, definitions)
    options = TrainOptions(
        seed=11,
        name_prefix=f"test-{run}-",
        experiment=f"test-models-{run}",
        injections=demo.injections,
    )
    reports = {r.kind: r for r in train(["anomaly", "direction", "regime"], context, options)}
    world = ModelsWorld(stack, run, definitions, demo, context, options, reports)
    yield world
    context.store.close()
    for report in reports.values():
        context.registry.delete(report.logged.ref.name)
    experiment = context.registry.client.get_experiment_by_name(options.experiment)
    if experiment is not None:
        context.registry.client.delete_experiment(experiment.experiment_id)
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in definitions.views:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(table_identifier(view.source.table))
            )


@pytest.fixture
def anomalies_topic(world: ModelsWorld, unique_name: Callable[[str], str]) -> str:
    topic = unique_name("anomalies")
    admin = AdminClient(world.settings.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(topic, 2)])
    return topic
