"""A user's XGBoost model logged with MLflow's own flavor: Predict scores it as MLflow does.

The models are saved in MLflow's format to a folder and loaded with ``mlflow.pyfunc`` (no tracking
server): what the registry hands Predict after its download.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import ConfigurationError
from featurestore.service.models import LoadedModel
from featurestore.service.models import served_model

COLUMNS = ("rolling_1m__vwap_5m", "rolling_1m__realized_vol_5m", "bars_1m__volume")


def _training_set() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(0.0, 1.0, (400, len(COLUMNS))), columns=list(COLUMNS))
    x.iloc[::7, 1] = np.nan  # a feature missing now and then, as in exports
    y = ((x[COLUMNS[0]] - 0.5 * x[COLUMNS[2]]) > 0).astype(int)
    return x, y


def _saved(tmp_path: Path, model: Any, example: pd.DataFrame) -> Any:
    from models._mlflow import mlflow

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.xgboost

        mlflow.xgboost.save_model(
            model,
            tmp_path / "model",
            signature=mlflow.models.infer_signature(example, np.zeros(len(example))),
            pip_requirements=["xgboost"],
        )
        return mlflow.pyfunc.load_model(str(tmp_path / "model"))


def _matrix() -> np.ndarray:
    rng = np.random.default_rng(5)
    matrix = rng.normal(0.0, 1.0, (50, len(COLUMNS)))
    matrix[3, 0] = np.nan
    matrix[10, :] = np.nan  # an entity with no feature at all
    return matrix


def _served_equals_mlflow(loaded: Any) -> LoadedModel:
    served = served_model(loaded, "user-model", "1")
    matrix = _matrix()
    expected = np.asarray(loaded.predict(pd.DataFrame(matrix, columns=list(COLUMNS))))
    scores = served.score(matrix)
    expected = expected[:, -1] if expected.ndim == 2 else expected
    np.testing.assert_array_equal(scores, expected.astype(np.float64))
    return served


def test_a_booster_is_scored_in_place_as_mlflow_scores_it(tmp_path):
    import xgboost as xgb

    x, y = _training_set()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(x, label=y), 20
    )
    served = _served_equals_mlflow(_saved(tmp_path, booster, x))
    assert served.runtime == "xgboost"
    assert served.columns == COLUMNS


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_a_scikit_learn_api_model_is_scored_as_mlflow_scores_it(tmp_path, kind):
    import xgboost as xgb

    x, y = _training_set()
    model = (
        xgb.XGBClassifier(n_estimators=15, max_depth=3)
        if kind == "classifier"
        else xgb.XGBRegressor(n_estimators=15, max_depth=3)
    ).fit(x, y)
    served = _served_equals_mlflow(_saved(tmp_path, model, x))
    assert served.runtime == "xgboost"


def test_a_booster_trained_on_other_columns_than_its_signature_is_refused(tmp_path):
    import xgboost as xgb

    x, y = _training_set()
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=y), 5)
    swapped = x[[COLUMNS[1], COLUMNS[0], COLUMNS[2]]]  # the signature in another order
    loaded = _saved(tmp_path, booster, swapped)
    with pytest.raises(ConfigurationError) as raised:
        served_model(loaded, "user-model", "1")
    assert str(raised.value) == (
        f"model user-model version 1: the booster was trained on columns {list(COLUMNS)}, "
        f"its signature says {list(swapped.columns)}"
    )
