"""The SDK's errors: one per gRPC status a caller may want to handle.

::

    FeatureStoreClientError         any failed call (``code``, ``details``)
    ├── InvalidArgumentError        the request is malformed; the message names the field
    ├── NotFoundError               a feature, view, feature service or model does not exist
    ├── UnauthenticatedError        no or a wrong bearer token
    ├── PermissionDeniedError       the token lacks the scope the call needs (named)
    ├── UnavailableError            the server or its backend is away (retried before raising)
    ├── DeadlineExceededError       the call ran out of time
    ├── OutOfRangeError             a resume token whose position is gone (retention) or foreign
    ├── FailedPreconditionError     the model cannot be served as registered (output, features)
    ├── ResourceExhaustedError      the server runs as many exports or streams as it allows
    ├── UnimplementedError          the server does not offer the call (a stream it has no log for)
    └── InternalError               the server failed; its details say no more than that
"""

from __future__ import annotations

import grpc

__all__ = [
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FeatureStoreClientError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
]


class FeatureStoreClientError(Exception):
    """A call failed with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        """The gRPC status code."""
        self.details = details
        """The server's message."""


class InvalidArgumentError(FeatureStoreClientError):
    """INVALID_ARGUMENT."""


class NotFoundError(FeatureStoreClientError):
    """NOT_FOUND."""


class UnauthenticatedError(FeatureStoreClientError):
    """UNAUTHENTICATED."""


class PermissionDeniedError(FeatureStoreClientError):
    """PERMISSION_DENIED: the token is valid but does not grant the call's scope."""


class UnavailableError(FeatureStoreClientError):
    """UNAVAILABLE, after the retries."""


class DeadlineExceededError(FeatureStoreClientError):
    """DEADLINE_EXCEEDED."""


class OutOfRangeError(FeatureStoreClientError):
    """OUT_OF_RANGE: the resume token's position is gone; start again from a time or from now."""


class FailedPreconditionError(FeatureStoreClientError):
    """FAILED_PRECONDITION: the request is well formed but the store cannot serve it as set up."""


class ResourceExhaustedError(FeatureStoreClientError):
    """RESOURCE_EXHAUSTED: the server is at its limit of exports or streams; retry later."""


class UnimplementedError(FeatureStoreClientError):
    """UNIMPLEMENTED: this server does not offer the call."""


class InternalError(FeatureStoreClientError):
    """INTERNAL: the server failed (it logs why)."""


_BY_CODE: dict[grpc.StatusCode, type[FeatureStoreClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
}


def from_rpc_error(error: grpc.RpcError) -> FeatureStoreClientError:
    """The SDK error for a failed call."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    return _BY_CODE.get(code, FeatureStoreClientError)(code, details)
