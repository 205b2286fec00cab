"""Training from the offline store to registered models, loaded the way Predict loads them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from featurestore.offline import TrainingRequest
from featurestore.service.models import load_pyfunc
from models._mlflow import quiet
from models.data import DatasetSpec
from models.data import SplitSpec
from models.data import load_dataset
from models.registry import CHAMPION
from models.training.run import FEATURE_SERVICES
from models.training.run import TrainOptions
from models.training.run import fit
from tests.integration.models.conftest import ModelsWorld

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("kind", ["anomaly", "direction", "regime"])
def test_every_model_is_registered_promoted_and_loads_by_alias(
    world: ModelsWorld, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = world.reports[kind]
    ref = world.registry.alias(report.logged.ref.name, CHAMPION)
    assert ref is not None and ref.version == report.logged.ref.version
    service = FEATURE_SERVICES[kind]
    assert ref.tags["feature_service"] == service
    run = world.registry.client.get_run(report.logged.run_id)
    assert run.data.tags["feature_service"] == service
    assert run.data.tags["data_start"] < run.data.tags["data_end"]
    for metric in ("model.test.auc", "baseline_majority.test.auc") if kind != "anomaly" else (
        "model.test.precision", "model.all.event_recall"):  # fmt: skip
        assert metric in run.data.metrics

    # Both loaders (the scorer's registry and Predict's) remove the artifacts they downloaded.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # Logged as code and a configuration: they load where MLflow refuses pickled objects.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with quiet():
        model = world.registry.load(ref)
        served = load_pyfunc(world.registry.tracking_uri, ref.name, ref.version)
    assert list(tmp_path.iterdir()) == []
    logged = model.metadata.flavors["python_function"]
    assert "python_model" not in logged and logged["config"]["class"] == "FeatureModel"
    native = logged["artifacts"]["native"]["path"]  # XGBoost's JSON, a forest in skops' format
    assert native.endswith(".skops" if kind == "anomaly" else ".json"), native
    assert served.columns == tuple(model.metadata.get_input_schema().input_names())
    columns = model.metadata.get_input_schema().input_names()
    refs = world.definitions.resolve(service=service)
    assert columns == [f"{r.view}__{r.feature}" for r in refs]
    keys = (
        world.demo.trades[["symbol"]]
        .drop_duplicates()
        .assign(event_timestamp=world.demo.trades["event_time"].max().ceil("min"))
    )
    frame = world.context.store.to_pandas(
        keys, TrainingRequest(feature_service=service, full_feature_names=True)
    )
    scores = model.predict(frame[columns].astype("float64"))
    assert scores.shape == (len(keys),) and np.isfinite(scores).all()
    if kind != "anomaly":
        assert ((scores >= 0) & (scores <= 1)).all()


def test_models_beat_or_match_their_baselines_where_there_is_signal(world: ModelsWorld):
    regime = world.reports["regime"].metrics
    assert regime["model.test.auc"] > regime["baseline_majority.test.auc"] + 0.1
    assert regime["model.test.log_loss"] < regime["baseline_majority.test.log_loss"]
    anomaly = world.reports["anomaly"].metrics
    assert anomaly["model.all.event_recall"] >= 0.8 and anomaly["model.all.precision"] >= 0.7


@pytest.mark.parametrize("kind", ["direction", "regime"])
def test_leakage_canary_labels_shuffled_in_time_score_chance(world: ModelsWorld, kind: str):
    spec = DatasetSpec(FEATURE_SERVICES[kind])
    dataset = load_dataset(world.context.store, world.context.dsn, spec)
    options = TrainOptions(seed=3, split=SplitSpec(gap=spec.label_reach), shuffle_labels=True)
    shuffled = fit(kind, dataset, options).metrics
    assert abs(shuffled["model.test.auc"] - 0.5) < 0.07
    if kind == "regime":  # the same pipeline does find the real signal
        real = fit(kind, dataset, TrainOptions(seed=3, split=SplitSpec(gap=spec.label_reach)))
        assert real.metrics["model.test.auc"] > 0.65


def test_training_twice_with_the_same_seed_gives_the_same_metrics(world: ModelsWorld):
    spec = DatasetSpec(FEATURE_SERVICES["direction"])
    dataset = load_dataset(world.context.store, world.context.dsn, spec)
    options = TrainOptions(seed=9, split=SplitSpec(gap=spec.label_reach))
    assert fit("direction", dataset, options).metrics == fit("direction", dataset, options).metrics
