"""The errors of the store, one tree under :class:`FeatureStoreError`.

::

    FeatureStoreError
    ├── ConfigurationError          settings or definitions are wrong; fix and restart
    ├── ValidationError             an input (event, request, file row) is malformed; never retried
    │   └── SchemaError             a schema is invalid or incompatible
    ├── NotFoundError               a named thing (feature, model, subject) does not exist
    └── BackendUnavailableError     Kafka, PostgreSQL, Redis, MLflow or the registry is away;
                                    a retry may help

Every error says whether retrying can help (``retryable``), so that a processor knows whether to
retry or to dead-letter, and carries the gRPC status it maps to (``grpc_code``), so that the
service translates it in one place. Errors of libraries (confluent-kafka, fastavro, psycopg,
redis, Feast and SQLAlchemy) are translated into these at the boundary with ``raise ... from
exc``, by one mapping per library where several edges meet it (:mod:`featurestore.error_maps`).
"""

from __future__ import annotations

from typing import ClassVar

from grpc import StatusCode

__all__ = [
    "BackendUnavailableError",
    "CancelledOperationError",
    "ConfigurationError",
    "FeatureStoreError",
    "NotFoundError",
    "SchemaError",
    "ValidationError",
]


class FeatureStoreError(Exception):
    """Root of every error the store raises on purpose."""

    retryable: bool = False
    """Whether the same call may succeed later."""
    grpc_code: ClassVar[StatusCode] = StatusCode.INTERNAL
    """The gRPC status this error maps to."""


class ConfigurationError(FeatureStoreError):
    """Settings or definitions are wrong."""

    grpc_code = StatusCode.FAILED_PRECONDITION


class ValidationError(FeatureStoreError):
    """An input is malformed: a field is missing, of the wrong type or out of range."""

    grpc_code = StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        """Keep the message, and the name of the offending field when one is to blame."""
        super().__init__(message)
        self.field = field
        """The name of the offending field, when one is to blame."""


class SchemaError(ValidationError):
    """A schema is invalid, or incompatible with what is registered."""


class NotFoundError(FeatureStoreError):
    """A named feature, view, model or subject does not exist."""

    grpc_code = StatusCode.NOT_FOUND


class BackendUnavailableError(FeatureStoreError):
    """A backend server cannot be reached; retrying later may help."""

    retryable = True
    grpc_code = StatusCode.UNAVAILABLE


class CancelledOperationError(FeatureStoreError):
    """The caller cancelled the operation (a client that went away, a server stopping)."""

    grpc_code = StatusCode.CANCELLED
