"""The LSTM and the forest served by Predict equal the offline models on the same rows.

On the package's demo world (its offline tables, its Feast project): an LSTM and the return
forest are trained from the point-in-time export and registered in MLflow; each symbol's newest
rows are written to Redis as the processors would; Predict (a live server over the real Redis,
MLflow and PostgreSQL) must return, for each symbol, what the registered model computes offline
from the exported rows: for the LSTM, the sequence of the symbol's last rows (the newest from
Redis, the others read by Predict from PostgreSQL point in time). The first-models bootstrap
trains on that fed data when told its project.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy

from featurestore.config import GrpcSettings
from featurestore.config import ServiceSettings
from featurestore.mlflow_models import load_pyfunc_model
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import FeatureSpec
from featurestore.online import FeatureViewSpec
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.online import ValueType
from featurestore.online.testing import delete_project_keys
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from models._mlflow import quiet
from models.bootstrap import ensure_first_models
from models.data import Dataset
from models.data import DatasetSpec
from models.data import SplitSpec
from models.data import load_dataset
from models.registry import CHAMPION
from models.tracking import log_and_register
from models.training.forward_return import fit_forward_return
from models.training.lstm import fit_lstm
from tests.integration.models.conftest import ModelsWorld

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICE = "direction_features_v1"
VIEWS = ("bars_1m", "rolling_1m")
SEQ_LEN = 8


@dataclass
class Served:
    world: ModelsWorld
    dataset: Dataset
    names: dict[str, str]
    """Kind -> registered model name."""
    newest: pd.DataFrame
    """Each symbol's newest sample row (written to Redis)."""
    server: ServerThread


def _catalog(world: ModelsWorld) -> StaticCatalog:
    """The world's views as the online store holds them, without TTL (the demo is of 2024)."""
    views = []
    for view in world.definitions.views:
        if view.name in VIEWS:
            features = tuple(
                FeatureSpec(f.name, ValueType[f.value_type.name]) for f in view.features
            )
            views.append(FeatureViewSpec(view.name, ("symbol",), features, None))
    return StaticCatalog.of(world.definitions.project, views)


def _write_newest(world: ModelsWorld, catalog: StaticCatalog, newest: pd.DataFrame) -> None:
    rows = []
    for record in newest.to_dict("records"):
        when = pd.Timestamp(record["event_timestamp"]).to_pydatetime()
        entity = EntityKey.of(symbol=str(record["symbol"]))
        for view in VIEWS:
            values = {
                c.split("__", 1)[1]: (None if pd.isna(record[c]) else float(record[c]))
                for c in newest.columns
                if c.startswith(f"{view}__")
            }
            rows.append(FeatureRow(view, entity, when, values))

    async def write() -> None:
        store = RedisOnlineStore.from_settings(world.settings.redis, catalog)
        try:
            await store.write(rows)
        finally:
            await store.close()

    asyncio.run(write())


@pytest.fixture(scope="module")
def served(world: ModelsWorld) -> Iterator[Served]:
    settings = world.settings
    spec = DatasetSpec(SERVICE, world.options.window)
    dataset = load_dataset(world.context.store, settings.postgres.dsn, spec)
    split = SplitSpec(gap=spec.label_reach)
    names = {}
    for kind, trained in (
        ("lstm", fit_lstm(dataset, split, 0, epochs=3, window=SEQ_LEN, hidden=16)),
        ("rf", fit_forward_return(dataset, split, 0)),
    ):
        names[kind] = f"test-{world.run}-served-{kind}"
        log_and_register(
            trained,
            world.registry,
            model_name=names[kind],
            experiment=world.options.experiment,
            promote="always",
        )
    frame = dataset.frame
    newest = frame.loc[frame.groupby("symbol")["event_timestamp"].idxmax()]
    catalog = _catalog(world)
    _write_newest(world, catalog, newest[["symbol", "event_timestamp", *dataset.feature_columns]])
    offline = OfflineAccess(settings, catalog.project, load=lambda _s, _p: world.definitions)
    server_settings = settings.model_copy(
        update={"grpc": GrpcSettings(port=0), "service": ServiceSettings()}
    )
    server = ServerThread(server_settings, catalog, offline=offline)
    yield Served(world, dataset, names, newest, server)
    server.stop(grace_s=0)
    asyncio.run(offline.aclose())  # given to the server, so not closed by it
    for name in names.values():
        world.registry.delete(name)
    delete_project_keys(settings.redis, catalog.project)


def _offline_scores(served: Served, kind: str) -> np.ndarray:
    """The registered model's scores of each symbol's newest row, from the exported rows."""
    with quiet():
        model = load_pyfunc_model(f"models:/{served.names[kind]}@{CHAMPION}")
    frame = served.dataset.frame
    columns = ["symbol", "event_timestamp", *served.dataset.feature_columns]
    if kind == "lstm":
        naive = frame["event_timestamp"].dt.tz_convert(None)  # as the signature has it
        scores = model.predict(frame[columns].assign(event_timestamp=naive))
    else:
        scores = model.predict(frame[list(served.dataset.feature_columns)])
    out: np.ndarray = np.asarray(scores)[served.newest.index.to_numpy()]
    return out


@pytest.mark.parametrize("kind", ["lstm", "rf"])
def test_predict_equals_the_offline_model_on_the_same_rows(served: Served, kind: str) -> None:
    symbols = served.newest["symbol"].tolist()
    expected = _offline_scores(served, kind)
    assert np.isfinite(expected).all()  # every symbol has a full history
    with FeatureStoreClient(
        served.server.target, retry=RetryPolicy(max_attempts=1), timeout_s=120
    ) as client:
        first = client.predict(served.names[kind], entities={"symbol": symbols})
        again = client.predict(served.names[kind], entities={"symbol": symbols})  # states kept
        ghost = client.predict(served.names[kind], entities={"symbol": ["GHOST", symbols[0]]})
    np.testing.assert_allclose(first.scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(again.scores, first.scores)
    if kind == "lstm":
        assert np.isnan(ghost.scores[0])  # no row online: no sequence
    np.testing.assert_allclose(ghost.scores[1], expected[0], rtol=1e-5, atol=1e-6)


def test_first_models_train_on_the_fed_data_when_there_is_enough(world: ModelsWorld) -> None:
    run = uuid.uuid4().hex[:8]
    prefix = f"boot-fed-{run}-"
    try:
        (report,) = ensure_first_models(
            world.settings,
            kinds=("rf",),
            name_prefix=prefix,
            experiment=world.options.experiment,
            project=world.definitions.project,
        )
        ref = world.registry.alias(f"{prefix}rf", CHAMPION)
        assert ref is not None and ref.version == report.logged.ref.version
        assert ref.tags["data_source"].startswith(f"fed: project {world.definitions.project}")
        for who in ("model", "baseline_zero", "baseline_last_return"):
            assert np.isfinite(report.metrics[f"{who}.test.rmse"])
    finally:
        if world.registry.alias(f"{prefix}rf", CHAMPION) is not None:
            world.registry.delete(f"{prefix}rf")
