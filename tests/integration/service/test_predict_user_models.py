"""A user's own model, end to end: export a training set, train, log with MLflow's own flavor
(XGBoost, scikit-learn in MLflow's default format), alias it champion, Predict.

What ``models/README.md`` tells a user to do, against the stack's MLflow and a live server: the
export's full feature names are the model's inputs, and Predict scores exactly what MLflow's own
``pyfunc`` scores on the features Predict read.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy

from bench.user_models import register_booster
from featurestore.config import Settings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from tests.integration.service.mlflow_models import delete_model
from tests.integration.service.offline_data import T0
from tests.integration.service.offline_data import Offline

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
FEATURES = ["bars_1m:close", "bars_1m:volume", "rolling_1m:vwap_5m", "rolling_1m:sma_5"]


@pytest.fixture
def server(
    offline: Offline,
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
) -> ServerThread:
    write_rows(
        [
            FeatureRow(
                "bars_1m", EntityKey.of(symbol="AAA"), NOW, {"close": 130.0, "volume": 12.0}
            ),
            FeatureRow(
                "rolling_1m", EntityKey.of(symbol="AAA"), NOW, {"vwap_5m": 28.0, "sma_5": 31.0}
            ),
            FeatureRow(
                "bars_1m", EntityKey.of(symbol="BBB"), NOW, {"close": 215.0, "volume": 40.0}
            ),
        ]
    )
    return start_server(offline=OfflineAccess(offline.settings, offline.definitions.project))


@pytest.fixture
def model_name(stack: Settings) -> Iterator[str]:
    name = f"fs-user-{uuid.uuid4().hex[:8]}"
    yield name
    delete_model(stack, name)


def _export(client: FeatureStoreClient) -> pd.DataFrame:
    table = client.export_training_dataset(
        FEATURES,
        symbols=["AAA", "BBB"],
        start_time=(T0 + pd.Timedelta(minutes=1)).to_pydatetime(),
        end_time=(T0 + pd.Timedelta(minutes=59)).to_pydatetime(),
        step=timedelta(seconds=20),
        full_feature_names=True,
    )
    return table.to_pandas()


def _log(stack: Settings, name: str, flavor: str, x: pd.DataFrame, y: pd.Series) -> None:
    """Train and log the way a user would, with MLflow's own flavor; alias champion -> 1."""
    if flavor == "xgboost":
        import xgboost as xgb

        booster = xgb.train({"max_depth": 3}, xgb.DMatrix(x, label=y), 25)
        register_booster(stack, name, f"test-{name}", booster, x)
        return
    import mlflow.sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier

    from models._mlflow import mlflow

    mlflow.set_tracking_uri(stack.mlflow.tracking_uri)
    mlflow.set_experiment(f"test-{name}")
    with mlflow.start_run(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's advice while logging
        classifier = HistGradientBoostingClassifier(max_iter=25).fit(x, y > y.median())
        signature = mlflow.models.infer_signature(x, classifier.predict_proba(x)[:, 1])
        mlflow.sklearn.log_model(  # MLflow's default format (skops), not a pickle
            classifier,
            name="model",
            signature=signature,
            registered_model_name=name,
            pyfunc_predict_fn="predict_proba",
            pip_requirements=["scikit-learn"],
            skops_trusted_types=[
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
            ],
        )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")


def _mlflow_scores(stack: Settings, name: str, inputs: pd.DataFrame) -> np.ndarray:
    from models._mlflow import mlflow

    mlflow.set_tracking_uri(stack.mlflow.tracking_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model: Any = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    out = np.asarray(model.predict(inputs), dtype=np.float64)
    return out[:, -1] if out.ndim == 2 else out


@pytest.mark.parametrize("flavor", ["xgboost", "sklearn"])
def test_a_model_trained_on_an_export_is_served_as_mlflow_scores_it(
    server: ServerThread, stack: Settings, model_name: str, flavor: str
) -> None:
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1), timeout_s=120) as c:
        frame = _export(c)
        columns = [column for column in frame.columns if "__" in column]
        assert columns == [ref.replace(":", "__") for ref in FEATURES]
        x = frame[columns].astype("float64")  # NaN where BBB has no rolling row
        y = 0.8 * x["rolling_1m__vwap_5m"].fillna(0.0) - 0.1 * x["bars_1m__close"]
        _log(stack, model_name, flavor, x, y)

        result = c.predict(model_name, entities={"symbol": ["AAA", "BBB", "GHOST"]})

    assert result.model_version == "1"
    served = pd.DataFrame(
        [
            [np.nan if (v := p.features[ref].value) is None else float(v) for ref in FEATURES]
            for p in result.predictions
        ],
        columns=columns,
    )
    assert served.iloc[0].tolist() == [130.0, 12.0, 28.0, 31.0]
    assert served.iloc[1, :2].tolist() == [215.0, 40.0] and served.iloc[1, 2:].isna().all()
    assert served.iloc[2].isna().all()
    expected = _mlflow_scores(stack, model_name, served)
    np.testing.assert_array_equal(result.scores, expected)
    assert result.scores[0] != result.scores[2]  # the features decide, not a constant
