"""The models' logged form: a configuration and files without pickles that read back as the same
model, or a clear error."""

from __future__ import annotations

import zipfile
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
import skops.io  # type: ignore[import-untyped]
import yaml
from sklearn.ensemble import IsolationForest
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from featurestore.errors import ConfigurationError
from featurestore.errors import ValidationError
from models._mlflow import MlflowException
from models._mlflow import mlflow
from models._mlflow import quiet
from models.anomaly.detector import DetectorParams
from models.anomaly.model import DetectorConfig
from models.anomaly.model import DetectorModel
from models.pyfunc import FeatureModel
from models.pyfunc import ModelConfig
from models.pyfunc import load_native
from models.pyfunc import save_native
from models.registered import python_model_of_config
from models.training.lstm import SequenceConfig
from models.training.lstm import SequenceModel

FEATURE = FeatureModel(
    ModelConfig(
        kind="direction",
        flavor="xgboost",
        feature_columns=("rolling_1m__vwap_5m", "rolling_1m__sma_5"),
        positive_class=2,
        fill_values={"rolling_1m__sma_5": 0.5},
    )
)
SEQUENCE = SequenceModel(
    SequenceConfig(
        feature_columns=("rolling_1m__vwap_5m",), mean=(0.25,), std=(1.5,), window=4, hidden=3
    )
)
DETECTOR = DetectorModel(
    DetectorConfig("metric_rolling_1m", "entity", ("value_mean_1m",), DetectorParams(season=60))
)


def _as_logged(model: Any) -> dict[str, Any]:
    """The configuration as MLflow writes it into ``MLmodel`` (YAML) and reads it back."""
    logged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(model.model_config()))
    return logged


@pytest.mark.parametrize("model", [FEATURE, SEQUENCE, DETECTOR], ids=type)
def test_each_model_reads_back_from_its_logged_configuration(model: Any) -> None:
    again: Any = python_model_of_config(_as_logged(model))
    assert type(again) is type(model)
    assert again.config == model.config


def test_a_configuration_naming_no_known_class_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="names class 'Pickled', not one of"):
        python_model_of_config({**_as_logged(DETECTOR), "class": "Pickled"})
    with pytest.raises(ConfigurationError, match="names class None"):
        python_model_of_config({"view": "v"})


def test_a_configuration_lacking_or_mistyping_a_value_is_refused_naming_it() -> None:
    lacking = {k: v for k, v in _as_logged(FEATURE).items() if k != "feature_columns"}
    with pytest.raises(ConfigurationError, match="FeatureModel model's configuration lacks "):
        python_model_of_config(lacking)
    with pytest.raises(ConfigurationError, match="flavor 'torch' is not one of"):
        python_model_of_config({**_as_logged(FEATURE), "flavor": "torch"})
    with pytest.raises(ConfigurationError, match="SequenceModel model's configuration is not"):
        python_model_of_config({**_as_logged(SEQUENCE), "window": "four"})
    params = {**DETECTOR.config.params.to_dict(), "alpha": 5.0}
    with pytest.raises(ValidationError, match=r"alpha=5\.0 is out of range"):
        python_model_of_config({**_as_logged(DETECTOR), "params": params})


def test_mlflow_refuses_a_pickled_wrapper_where_pickles_are_off(tmp_path, monkeypatch) -> None:
    """Why the store logs models as code: the pickled form does not load on such a host."""
    with quiet():
        mlflow.pyfunc.save_model(
            tmp_path / "model", python_model=DETECTOR, pip_requirements=["numpy"]
        )
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(MlflowException, match="Deserializing model using pickle is disallowed"):
        mlflow.pyfunc.load_model(str(tmp_path / "model"))
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    with quiet():
        loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert loaded.unwrap_python_model().config == DETECTOR.config


def _forests() -> list[Any]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4))
    return [
        RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0).fit(x, x[:, 0]),
        IsolationForest(n_estimators=5, random_state=0).fit(x),
    ]


@pytest.mark.parametrize("estimator", _forests(), ids=type)
def test_a_scikit_learn_model_is_saved_without_a_pickle_and_loads_the_same(
    estimator: Any, tmp_path
) -> None:
    path = save_native("sklearn", estimator, str(tmp_path))
    assert path.endswith(".skops") and zipfile.is_zipfile(path)  # skops' format: JSON and .npy
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith((".json", ".npy")) for name in archive.namelist())
    again = load_native("sklearn", path)
    x = np.random.default_rng(5).normal(size=(50, 4))
    score = "predict" if isinstance(estimator, RandomForestRegressor) else "score_samples"
    np.testing.assert_array_equal(getattr(again, score)(x), getattr(estimator, score)(x))


def test_a_scikit_learn_file_holding_an_untrusted_type_is_refused_naming_it(tmp_path) -> None:
    path = str(tmp_path / "native.skops")
    skops.io.dump(make_pipeline(FunctionTransformer(_forests)), path)
    with pytest.raises(ConfigurationError, match=r"refused: .*test_registered\._forests"):
        load_native("sklearn", path)


def test_a_scikit_learn_file_of_an_earlier_release_still_loads(tmp_path) -> None:
    """Versions logged before skops hold a joblib file (a pickle): loaded as before."""
    forest = _forests()[0]
    path = str(tmp_path / "native.joblib")
    joblib.dump(forest, path)
    x = np.ones((1, 4))
    np.testing.assert_array_equal(load_native("sklearn", path).predict(x), forest.predict(x))
