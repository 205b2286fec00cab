"""Predict's edges: models that break their contract, inline values, versions, unknown features."""

from __future__ import annotations

import asyncio
from datetime import UTC
from datetime import datetime
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service.models import LoadedModel
from featurestore.service.predict_read import PredictReader
from featurestore.service.predictions import PredictionServicer

REFS = (FeatureRef("bars_1m", "close"), FeatureRef("bars_1m", "volume"))
COLUMNS = ("bars_1m__close", "bars_1m__volume")
NOW = datetime.now(UTC).replace(microsecond=0)


def _model(output: Any, refs: tuple[FeatureRef, ...] = REFS, version: str = "3") -> LoadedModel:
    columns = tuple(f"{r.view}__{r.feature}" for r in refs)
    return LoadedModel("m", version, columns, refs, None, scorer=lambda matrix: output(matrix))


@pytest.mark.parametrize(
    ("output", "says"),
    [
        (lambda x: np.zeros(len(x) + 1), "returned 3 scores for 2 rows"),
        (lambda x: np.zeros((len(x), 0)), r"output of shape \(2, 0\)"),
        (lambda x: np.zeros((len(x), 2, 2)), r"output of shape \(2, 2, 2\)"),
        (lambda x: None, "returned no output"),
        (lambda x: np.array(["up"] * len(x)), "values that are not numbers"),
        (lambda x: [object()] * len(x), "values that are not numbers"),
    ],
)
def test_an_output_that_is_not_one_number_per_row_is_failed_precondition(output, says):
    with pytest.raises(ConfigurationError, match=says) as raised:
        _model(output).score(np.ones((2, 2)))
    assert raised.value.grpc_code is grpc.StatusCode.FAILED_PRECONDITION
    assert str(raised.value).startswith("model m version 3 returned")


def test_a_model_returning_nothing_for_one_row_is_refused_not_a_nan_score():
    with pytest.raises(ConfigurationError, match="returned no output"):
        _model(lambda x: None).score(np.ones((1, 2)))


def test_outputs_kept_as_before():
    ones = np.ones((2, 2))
    assert _model(lambda x: x.sum(axis=1)).score(ones).tolist() == [2.0, 2.0]
    assert _model(lambda x: np.tile([0.2, 0.8], (2, 1))).score(ones).tolist() == [0.8, 0.8]
    assert _model(lambda x: [1, None]).score(ones)[0] == 1.0  # numbers as objects
    scores = _model(lambda x: np.array([np.nan, np.inf])).score(ones)  # the model's own output
    assert np.isnan(scores[0]) and np.isinf(scores[1])
    frame = _model(lambda x: pd.DataFrame({"a": [0.1, 0.2], "b": [0.3, 0.4]})).score(ones)
    assert frame.tolist() == [0.3, 0.4]


def test_a_model_that_raises_is_internal_with_its_message():
    def boom(_: np.ndarray) -> np.ndarray:
        raise ValueError("cannot score this")

    with pytest.raises(FeatureStoreError, match="model m version 3 failed to predict: cannot"):
        _model(boom).score(np.ones((1, 2)))


def test_a_feature_model_signature_in_another_order_scores_as_predict():
    from sklearn.linear_model import LogisticRegression

    from models.pyfunc import FeatureModel
    from models.pyfunc import ModelConfig

    own = ("rolling_1m__realized_vol_5m", "bars_1m__volume", "rolling_1m__volume_ratio")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(1, 0.3, (50, 3)), columns=own)
    native = LogisticRegression().fit(frame.to_numpy(), (frame[own[2]] > 1).astype(int))
    model = FeatureModel(ModelConfig("direction", "sklearn", own)).bind(native)
    signature = (own[2], own[0], own[1])
    scorer, runtime = model.native_scorer(signature)
    assert runtime == "sklearn"
    np.testing.assert_allclose(
        scorer(frame[list(signature)].to_numpy()), model.predict(None, frame), rtol=1e-12
    )
    with pytest.raises(ConfigurationError, match="the model reads"):
        model.native_scorer((own[0], own[1], "bars_1m__close"))
    with pytest.raises(ConfigurationError, match="the model reads"):
        model.native_scorer((own[0], own[1], own[1]))


class _Models:
    """The registry's ``get``: one model, and the versions asked for."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.asked: list[str | None] = []

    async def get(self, name: str, *, alias: str | None = None, version: str | None = None):
        self.asked.append(version)
        return self.model


class _Context:
    def time_remaining(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


def _request(inline: dict[str, list[float]] | None = None, version: str | None = None) -> bytes:
    request = prediction_service_pb2.PredictRequest(model_name="m")
    if version is not None:
        request.version = version
    request.entities["symbol"].values.add().string_value = "AAPL"
    for name, values in (inline or {}).items():
        column = request.inline_features[name]
        for value in values:
            column.values.add().double_value = value
    return request.SerializeToString()


def _predict(model: LoadedModel, data: bytes, *, reader: bool = False) -> Any:
    catalog = market_catalog()
    store = InMemoryOnlineStore(catalog)
    asyncio.run(
        store.write(
            [FeatureRow("bars_1m", EntityKey.of(symbol="AAPL"), NOW, {"close": 2.0, "volume": 3.0})]
        )
    )
    models = _Models(model)
    servicer = PredictionServicer(
        store,
        models,  # type: ignore[arg-type]
        None,
        max_entities=10,
        reader=PredictReader(None, catalog) if reader else None,  # type: ignore[arg-type]
    )
    answer = asyncio.run(servicer.Predict(data, _Context()))
    return prediction_service_pb2.PredictResponse.FromString(answer), models.asked


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_an_infinite_inline_feature_is_invalid_argument(value):
    model = _model(lambda x: x.sum(axis=1))
    with pytest.raises(ValidationError, match=r"inline_features\[bars_1m:close\]\.values\[0\]"):
        _predict(model, _request({"bars_1m:close": [value]}))
    response, _ = _predict(model, _request({"bars_1m:close": [float("nan")]}))
    assert response.predictions[0].feature_statuses[0] == types_pb2.FEATURE_STATUS_NULL_VALUE


def test_a_version_is_named_as_the_registry_numbers_it():
    response, asked = _predict(
        _model(lambda x: x.sum(axis=1), version="7"), _request(version="007")
    )
    assert asked == ["7"]
    assert response.model_version == "7" and response.predictions[0].score == 5.0


@pytest.mark.parametrize("version", ["0", "9" * 25, "2147483648", "latest", "-1", "1.0", ""])
def test_a_version_that_is_no_registry_number_is_invalid_argument(version):
    with pytest.raises(ValidationError, match=r"version: .* is not a registry version number"):
        _predict(_model(lambda x: x.sum(axis=1)), _request(version=version))


@pytest.mark.parametrize("reader", [False, True], ids=["general path", "row path"])
@pytest.mark.parametrize(
    ("ref", "says"),
    [
        (FeatureRef("nope", "x"), "feature view nope does not exist"),
        (FeatureRef("bars_1m", "nope"), "feature bars_1m:nope does not exist"),
    ],
)
def test_a_model_reading_an_undefined_feature_is_failed_precondition_naming_it(ref, says, reader):
    model = _model(lambda x: x.sum(axis=1), refs=(REFS[0], ref))
    with pytest.raises(ConfigurationError, match=f"model m version 3 reads .*{says}"):
        _predict(model, _request(), reader=reader)


class _Sum:
    """A custom pyfunc model (MLflow's generic path)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(model_input.sum(axis=1))


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        (None, "model m version 3 has no input signature"),
        (["close", "bars_1m__volume"], "model m version 3: model input column 'close' is not"),
    ],
)
def test_a_version_that_cannot_be_served_says_which(tmp_path, columns, says):
    import warnings

    from featurestore.service.models import served_model
    from models._mlflow import PythonModel
    from models._mlflow import mlflow

    python_model = type("Sum", (_Sum, PythonModel), {})()
    signature = None
    if columns is not None:
        example = pd.DataFrame(np.ones((2, len(columns))), columns=columns)
        signature = mlflow.models.infer_signature(example, np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            tmp_path / "model", python_model=python_model, signature=signature,
            pip_requirements=["pandas"],
        )  # fmt: skip
        loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    with pytest.raises(ConfigurationError) as raised:
        served_model(loaded, "m", "3")
    assert str(raised.value).startswith(says)
