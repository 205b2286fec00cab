"""First models for a fresh stack: train on demo data when no champion is registered.

``make run`` calls :func:`ensure_first_models` so that Predict and StreamAnomalies work out of the
box. The demo data is the seeded synthetic market with injected anomalies
(:func:`models.demo.demo_market`), turned into reference feature rows in tables of their own
(project ``featurestore_demo``, tables ``demo_bars_1m`` and ``demo_rolling_1m``), never mixed
with the live tables. Idempotent: a model that has a ``champion`` is left alone, and the demo
rows are upserted with a fixed ``created_timestamp``, so a second run writes nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from featurestore.config import Settings
from featurestore.offline import PostgresOfflineStore
from models.demo import demo_definitions, demo_market, training_window, write_features
from models.registry import CHAMPION, ModelRegistry
from models.training.run import TrainingContext, TrainOptions, TrainReport, model_name, train

__all__ = ["FIRST_KINDS", "ensure_first_models"]

log = logging.getLogger(__name__)

FIRST_KINDS = ("anomaly", "direction", "regime")
_CREATED = datetime(2024, 1, 1, tzinfo=UTC)


def ensure_first_models(
    settings: Settings,
    *,
    kinds: Sequence[str] = FIRST_KINDS,
    name_prefix: str = "featurestore-",
    experiment: str = "featurestore-models",
    table_prefix: str = "demo_",
) -> list[TrainReport]:
    """Train and promote the kinds that have no champion yet; returns what was trained."""
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    missing = [k for k in kinds if registry.alias(model_name(k, name_prefix), CHAMPION) is None]
    if not missing:
        log.info("every first model has a champion: %s", ", ".join(kinds))
        return []
    definitions = demo_definitions(prefix=table_prefix)
    demo = demo_market(seed=0)
    write_features(settings.postgres.dsn, definitions, demo.trades, created=_CREATED)
    dsn = settings.postgres.dsn
    context = TrainingContext(PostgresOfflineStore(dsn, definitions), dsn, registry)
    options = TrainOptions(
        seed=0,
        name_prefix=name_prefix,
        experiment=experiment,
        injections=demo.injections,
        window=training_window(definitions, demo.trades),
        tags={"data_source": "demo: synthetic market, seed 0, injected anomalies"},
    )
    return train(missing, context, options)
