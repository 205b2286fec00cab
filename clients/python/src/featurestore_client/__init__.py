"""featurestore-client: a typed Python client of the featurestore gRPC API."""

from featurestore_client._anomalies import Anomaly, AnomalyStream
from featurestore_client._client import FeatureStoreClient
from featurestore_client._errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    FeatureStoreClientError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from featurestore_client._online import EntityRow, OnlineFeatures
from featurestore_client._predict import Prediction, Predictions
from featurestore_client._prediction_stream import LoggedPrediction, PredictionStream
from featurestore_client._retry import RetryPolicy
from featurestore_client._types import FeatureColumn, FeatureStatus, FeatureValue

__all__ = [
    "Anomaly",
    "AnomalyStream",
    "DeadlineExceededError",
    "EntityRow",
    "FailedPreconditionError",
    "FeatureColumn",
    "FeatureStatus",
    "FeatureStoreClient",
    "FeatureStoreClientError",
    "FeatureValue",
    "InternalError",
    "InvalidArgumentError",
    "LoggedPrediction",
    "NotFoundError",
    "OnlineFeatures",
    "OutOfRangeError",
    "PermissionDeniedError",
    "Prediction",
    "PredictionStream",
    "Predictions",
    "ResourceExhaustedError",
    "RetryPolicy",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
]
