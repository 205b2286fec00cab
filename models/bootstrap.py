"""First models for a fresh stack: trained on the data fed so far, or on demo data.

``make run`` calls :func:`ensure_first_models` so that Predict and StreamAnomalies work out of the
box. When the live project's offline tables already hold enough closed minutes
(:data:`MIN_FED_MINUTES` distinct minutes and :data:`MIN_FED_ROWS` rows of ``rolling_1m``), the
first champions are trained on them, through the same point-in-time export as ``featurestore
train``; otherwise on the demo data: three hours of the synthetic market the feed sends (its
symbols, rate, seed and jumps) with injected anomalies (:func:`models.demo.demo_market`), turned
into reference feature rows in tables of their own
(project ``featurestore_demo``, tables ``demo_bars_1m`` and ``demo_rolling_1m``), never mixed
with the live tables. Each version's ``data_source`` tag says which. Idempotent: a model that has
a ``champion`` is left alone, and the demo rows are upserted with a fixed ``created_timestamp``,
so a second run writes nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime

from featurestore.config import Settings
from featurestore.definitions import PROJECT
from featurestore.definitions import Definitions
from featurestore.errors import FeatureStoreError
from featurestore.ingest.sources.synthetic import MarketConfig
from featurestore.offline import PostgresOfflineStore
from models.data import DataWindow
from models.data.source import sample_times
from models.demo import demo_definitions
from models.demo import demo_market
from models.demo import write_features
from models.registry import CHAMPION
from models.registry import ModelRegistry
from models.training.run import TrainingContext
from models.training.run import TrainOptions
from models.training.run import TrainReport
from models.training.run import model_name
from models.training.run import train

__all__ = ["FIRST_KINDS", "MIN_FED_MINUTES", "MIN_FED_ROWS", "ensure_first_models"]

logger = logging.getLogger(__name__)

FIRST_KINDS = ("anomaly", "direction", "regime", "rf", "lstm")
MIN_FED_MINUTES = 120
"""Closed minutes the fed data must span: 60/20/20 splits with 15-minute purge gaps need ~2 h."""
MIN_FED_ROWS = 1000
_CREATED = datetime(2024, 1, 1, tzinfo=UTC)


def _fed(settings: Settings, project: str) -> tuple[Definitions, str] | None:
    """The live definitions and a description of the fed data, if there is enough."""
    from featurestore.definitions import load_definitions

    try:
        definitions = load_definitions(settings, project)
        samples = sample_times(settings.postgres.dsn, definitions.view("rolling_1m"), DataWindow())
    except FeatureStoreError as exc:
        logger.info("no fed data to train the first models on (%s): using the demo market", exc)
        return None
    minutes = samples["event_timestamp"].nunique()
    if minutes < MIN_FED_MINUTES or len(samples) < MIN_FED_ROWS:
        logger.info(
            "fed data too short for the first models (%d rows over %d minutes; %d and %d needed)",
            len(samples), minutes, MIN_FED_ROWS, MIN_FED_MINUTES,
        )  # fmt: skip
        return None
    first = samples["event_timestamp"].min()
    symbols = samples["symbol"].nunique()
    text = f"fed: project {project}, {len(samples)} rows, {symbols} symbols, from {first}"
    return definitions, text


def ensure_first_models(
    settings: Settings,
    *,
    kinds: Sequence[str] = FIRST_KINDS,
    name_prefix: str = "featurestore-",
    experiment: str = "featurestore-models",
    table_prefix: str = "demo_",
    project: str | None = PROJECT,
    market: MarketConfig | None = None,
) -> list[TrainReport]:
    """Train and promote the kinds that have no champion yet; returns what was trained.

    ``project``: the live project whose fed data is used when there is enough (None: always
    the demo data). ``market``: the synthetic market the feed sends, whose parameters the demo
    data is drawn with over its own three hours (None: the demo's small market, 8 symbols).
    """
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    missing = [k for k in kinds if registry.alias(model_name(k, name_prefix), CHAMPION) is None]
    if not missing:
        logger.info("every first model has a champion: %s", ", ".join(kinds))
        return []
    dsn = settings.postgres.dsn
    fed = None if project is None else _fed(settings, project)
    if fed is not None:
        definitions, source = fed
        options = TrainOptions(
            seed=0,
            name_prefix=name_prefix,
            experiment=experiment,
            tags={"data_source": source},
        )
        with PostgresOfflineStore(dsn, definitions) as store:
            return train(missing, TrainingContext(store, dsn, registry), options)
    definitions = demo_definitions(prefix=table_prefix)
    if market is None:
        demo, drawn = demo_market(seed=0), "seed 0"
    else:
        demo = demo_market(
            seed=market.seed,
            symbols=market.symbols,
            rate=market.rate,
            jump_probability=market.jump_probability,
        )
        drawn = (
            f"the feed's, {market.symbols} symbols at {market.rate:g} trades/s, seed {market.seed}"
        )
    write_features(dsn, definitions, demo.trades, created=_CREATED)
    options = TrainOptions(
        seed=0,
        name_prefix=name_prefix,
        experiment=experiment,
        injections=demo.injections,
        tags={"data_source": f"demo: synthetic market ({drawn}), injected anomalies"},
    )
    with PostgresOfflineStore(dsn, definitions) as store:
        return train(missing, TrainingContext(store, dsn, registry), options)
