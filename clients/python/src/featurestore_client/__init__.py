"""featurestore-client: a typed Python client of the featurestore gRPC API."""

from featurestore_client._client import FeatureStoreClient
from featurestore_client._errors import (
    DeadlineExceededError,
    FeatureStoreClientError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
    UnavailableError,
)
from featurestore_client._retry import RetryPolicy
from featurestore_client._types import FeatureStatus, FeatureValue, OnlineFeatures

__all__ = [
    "DeadlineExceededError",
    "FeatureStatus",
    "FeatureStoreClient",
    "FeatureStoreClientError",
    "FeatureValue",
    "InvalidArgumentError",
    "NotFoundError",
    "OnlineFeatures",
    "RetryPolicy",
    "UnauthenticatedError",
    "UnavailableError",
]
