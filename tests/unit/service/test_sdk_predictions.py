"""The SDK's Predict answer: each prediction's features by name, a malformed answer named."""

from __future__ import annotations

import pytest
from featurestore_client import FeatureStatus
from featurestore_client._predict import predictions
from featurestore_client._proto.v1 import prediction_service_pb2
from featurestore_client._proto.v1 import types_pb2


def _response(values: int) -> prediction_service_pb2.PredictResponse:
    response = prediction_service_pb2.PredictResponse(model_name="m", model_version="1")
    prediction = response.predictions.add(request_id="r1", score=0.5)
    prediction.feature_names.extend(["bars_1m:close", "bars_1m:volume"])
    prediction.feature_values.extend(types_pb2.Value(double_value=v) for v in range(values))
    prediction.feature_statuses.extend([types_pb2.FEATURE_STATUS_PRESENT] * 2)
    return response


def test_features_are_named_with_their_status() -> None:
    answer = predictions(_response(2), {"symbol": ["IBM"]})
    features = answer.predictions[0].features
    assert [(n, v.value, v.status) for n, v in features.items()] == [
        ("bars_1m:close", 0.0, FeatureStatus.PRESENT),
        ("bars_1m:volume", 1.0, FeatureStatus.PRESENT),
    ]


def test_a_prediction_with_fewer_values_than_names_is_named() -> None:
    # A server that breaks the contract; zip(strict=True) said only "argument 2 is shorter".
    with pytest.raises(ValueError, match=r"^featurestore: prediction r1 has 2 feature names"):
        predictions(_response(1), {"symbol": ["IBM"]})
