"""Trainers on in-memory datasets: baselines, the leakage canary's power, the pyfunc contract."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from models._mlflow import mlflow
from models._mlflow import quiet
from models.data import Dataset
from models.data import SplitSpec
from models.demo.market import Injection
from models.pyfunc import NATIVE_ARTIFACT
from models.pyfunc import FeatureModel
from models.registered import MODEL_CODE
from models.training.anomaly import anomaly_windows
from models.training.anomaly import fit_anomaly
from models.training.direction import fit_direction
from models.training.metrics import conditional_baseline
from models.training.metrics import event_precision_recall
from tests.unit.models.logged import load_without_pickles

T0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
SPEC = SplitSpec(gap=timedelta(minutes=6))


def frame(n: int = 3000, leak: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Two symbols; direction is noise unless ``leak`` mixes the future return into a feature."""
    rng = np.random.default_rng(seed)
    ts = np.repeat(pd.date_range(T0, periods=n // 2, freq="min"), 2)
    fwd = rng.normal(0, 0.002, n)
    close = 100 + rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "symbol": np.tile(["AAA", "BBB"], n // 2),
            "event_timestamp": ts,
            "rolling_1m__close_1m": close,
            "rolling_1m__sma_5": close * (1 + rng.normal(0, 0.001, n)),
            "rolling_1m__price_momentum_1m": leak * fwd + rng.normal(0, 0.002, n),
            "rolling_1m__realized_vol_5m": np.abs(rng.normal(0.001, 0.0005, n)),
            "forward_return": fwd,
            "direction": np.sign(fwd).astype(int),
            "forward_vol": np.abs(rng.normal(0.001, 0.0005, n)),
        }
    )


def dataset(data: pd.DataFrame) -> Dataset:
    columns = tuple(c for c in data.columns if "__" in c)
    return Dataset(data, columns, "direction_features_v1")


def test_direction_reports_model_and_both_baselines_on_valid_and_test():
    trained = fit_direction(dataset(frame()), SPEC, seed=1)
    for who in ("model", "baseline_majority", "baseline_last_direction"):
        for part in ("valid", "test"):
            for metric in ("accuracy", "auc", "log_loss"):
                assert np.isfinite(trained.metrics[f"{who}.{part}.{metric}"])


def test_a_leaky_feature_is_found_and_shuffled_labels_lose_it():
    """The canary has power: the same pipeline finds a leak, and shuffling removes it."""
    data = dataset(frame(leak=1.0))
    leaky = fit_direction(data, SPEC, seed=1)
    assert leaky.metrics["model.test.auc"] > 0.8
    shuffled = fit_direction(data, SPEC, seed=1, shuffle_labels=True)
    assert abs(shuffled.metrics["model.test.auc"] - 0.5) < 0.06


def test_training_is_reproducible_with_a_seed():
    data = dataset(frame(leak=0.3))
    a = fit_direction(data, SPEC, seed=7).metrics
    b = fit_direction(data, SPEC, seed=7).metrics
    assert a == b


def test_conditional_baseline_is_the_training_frequency_per_state():
    state_train = np.array([1, 1, 1, 0, 0])
    y_train = np.array([1, 1, 0, 0, 0])
    p = conditional_baseline(state_train, y_train, np.array([1, 0, 5]))
    assert p[:, 1] == pytest.approx([3 / 5, 1 / 4, 3 / 7])  # Laplace-smoothed frequencies


def test_event_precision_and_recall():
    flagged = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    in_event = np.array([1, 1, 0, 1, 1, 0], dtype=bool)
    ids = np.array([0, 0, -1, 1, 1, -1])
    found = event_precision_recall(flagged, in_event, ids)
    assert found["precision"] == pytest.approx(2 / 3)
    assert found["event_recall"] == 1.0
    assert found["row_recall"] == 0.5


def test_anomaly_model_scores_outliers_higher_and_keeps_the_pyfunc_contract(tmp_path, monkeypatch):
    data = frame(n=2000)
    data = data.assign(
        **{"rolling_1m__volume_ratio": 1.0 + np.random.default_rng(1).normal(0, 0.1, 2000)}
    )
    spikes = [
        Injection("AAA", (T0 + pd.Timedelta(minutes=m)).to_pydatetime(), "volume_burst")
        for m in (700, 800, 900)
    ]
    for inj in spikes:
        row = (data.symbol == inj.symbol) & (data.event_timestamp == inj.bar_end)
        data.loc[row, "rolling_1m__volume_ratio"] = 12.0
        data.loc[row, "rolling_1m__realized_vol_5m"] = 0.02
    data.loc[data.index[5], "rolling_1m__sma_5"] = np.nan  # a missing feature still scores
    trained = fit_anomaly(dataset(data), SPEC, seed=3, injections=spikes)
    in_event, _ = anomaly_windows(data, spikes)
    scores = trained.wrapper.predict(None, data)
    assert scores.shape == (len(data),) and np.isfinite(scores).all()
    assert trained.metrics["model.all.event_recall"] == 1.0
    assert scores[in_event].max() >= trained.threshold > np.median(scores)

    # saved and loaded the way the registry does it (as code and a configuration, no pickle of
    # the wrapper): same scores, 1-D, from raw view__feature
    native = trained.save_native(str(tmp_path))
    assert native.endswith(".skops")  # the IsolationForest without a pickle
    example = trained.input_example()
    with quiet():
        mlflow.pyfunc.save_model(
            tmp_path / "model", python_model=MODEL_CODE, model_config=trained.model_config(),
            artifacts={NATIVE_ARTIFACT: native}, input_example=example,
            signature=mlflow.models.infer_signature(example, scores[:5]),
            pip_requirements=["scikit-learn"],  # not inferred: a subprocess that loads the model
        )  # fmt: skip
        loaded = load_without_pickles(tmp_path / "model", monkeypatch)
    assert isinstance(loaded.unwrap_python_model(), FeatureModel)
    assert loaded.unwrap_python_model().config == trained.config
    assert loaded.metadata.get_input_schema().input_names() == list(trained.config.feature_columns)
    again = loaded.predict(data[list(trained.config.feature_columns)])
    assert again.shape == (len(data),)
    np.testing.assert_allclose(again, scores)
