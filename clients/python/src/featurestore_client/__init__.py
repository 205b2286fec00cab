"""featurestore-client: a typed Python client of the featurestore gRPC API."""

from featurestore_client._anomalies import Anomaly
from featurestore_client._anomalies import AnomalyStream
from featurestore_client._client import FeatureStoreClient
from featurestore_client._errors import DeadlineExceededError
from featurestore_client._errors import FailedPreconditionError
from featurestore_client._errors import FeatureStoreClientError
from featurestore_client._errors import InternalError
from featurestore_client._errors import InvalidArgumentError
from featurestore_client._errors import NotFoundError
from featurestore_client._errors import OutOfRangeError
from featurestore_client._errors import PermissionDeniedError
from featurestore_client._errors import ResourceExhaustedError
from featurestore_client._errors import UnauthenticatedError
from featurestore_client._errors import UnavailableError
from featurestore_client._errors import UnimplementedError
from featurestore_client._online import EntityRow
from featurestore_client._online import OnlineFeatures
from featurestore_client._predict import Prediction
from featurestore_client._predict import Predictions
from featurestore_client._prediction_stream import LoggedPrediction
from featurestore_client._prediction_stream import PredictionStream
from featurestore_client._retry import RetryPolicy
from featurestore_client._types import FeatureColumn
from featurestore_client._types import FeatureStatus
from featurestore_client._types import FeatureValue

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
