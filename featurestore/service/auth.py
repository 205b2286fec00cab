"""Bearer tokens with scopes: which scope each RPC needs, and the check of one call's token.

Each method of the store's services needs one scope (:data:`METHOD_SCOPES`); a token grants
some of them (``FEATURESTORE_SERVICE__AUTH_TOKENS``, :class:`~featurestore.config.TokenGrant`),
so a token made for reading features cannot predict, export or subscribe. Health and
reflection need none (:data:`OPEN_SERVICES`): load balancers and tools such as grpcurl reach
them without a token. A method of the store that is not in the table cannot be registered on a
server with tokens (:func:`scope_of` raises), so a new RPC cannot slip in unguarded.

Refusals are precise: no (or a malformed) ``authorization`` header, or a token the server does
not know, is UNAUTHENTICATED; a known token without the method's scope is PERMISSION_DENIED.
Each message names the method and the scope it needs, never the token.

The server keeps only the SHA-256 digest of each token and compares the digest of the token a
call presents with every one of them by :func:`hmac.compare_digest`, without stopping at a
match, so the time a check takes says nothing about the tokens it holds.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from featurestore._proto.v1 import anomaly_service_pb2
from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import prediction_service_pb2
from featurestore.config import TokenGrant
from featurestore.errors import ConfigurationError

__all__ = ["METHOD_SCOPES", "OPEN_SERVICES", "Refusal", "TokenCheck", "scope_of"]

_SERVICE_SCOPES = {
    feature_service_pb2.DESCRIPTOR.services_by_name["FeatureService"]: "features:read",
    prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]: "predict",
    dataset_service_pb2.DESCRIPTOR.services_by_name["DatasetService"]: "datasets:export",
    anomaly_service_pb2.DESCRIPTOR.services_by_name["AnomalyService"]: "anomalies:subscribe",
}
METHOD_SCOPES: dict[str, str] = {
    f"/{service.full_name}/{method.name}": scope
    for service, scope in _SERVICE_SCOPES.items()
    for method in service.methods
}
"""The scope each method (``/package.Service/Method``) needs (one of :data:`GRPC_SCOPES`)."""
OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)
"""Services every caller reaches without a token."""
_HEADER = "authorization"
_SCHEME = "bearer "


def scope_of(method: str) -> str | None:
    """The scope ``method`` needs; None for an open one.

    Raises:
        ConfigurationError: ``method`` is neither open nor given a scope.
    """
    service = method.lstrip("/").partition("/")[0]
    if service in OPEN_SERVICES:
        return None
    try:
        return METHOD_SCOPES[method]
    except KeyError:
        raise ConfigurationError(
            f"{method} has no scope: add it to METHOD_SCOPES in featurestore/service/auth.py"
        ) from None


@dataclass(frozen=True)
class Refusal:
    """Why a call was refused: the status to end it with and a message for the caller."""

    code: grpc.StatusCode
    message: str


class TokenCheck:
    """Checks the ``authorization: Bearer <token>`` of a call against the configured grants."""

    def __init__(self, grants: Iterable[TokenGrant]) -> None:
        """Accept the tokens of ``grants``, each with its scopes."""
        self._grants = tuple(grants)

    def refusal(
        self, metadata: Sequence[tuple[str, str | bytes]] | None, method: str, scope: str
    ) -> Refusal | None:
        """None when the call's token grants ``scope``, else why ``method`` is refused."""
        values = [value for key, value in metadata or () if key == _HEADER]
        needs = f"{method.lstrip('/')} needs a bearer token with scope '{scope}'"
        if not values:
            return Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                f"no bearer token: {needs} (metadata 'authorization: Bearer <token>')",
            )
        raw = values[0]
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if len(values) > 1 or text[: len(_SCHEME)].lower() != _SCHEME:
            return Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the authorization metadata is not one 'Bearer <token>': {needs}",
            )
        digest = hashlib.sha256(text[len(_SCHEME) :].strip().encode()).digest()
        granted: frozenset[str] | None = None
        for grant in self._grants:  # every grant, without stopping at a match
            if hmac.compare_digest(digest, grant.digest):
                granted = grant.scopes | (granted or frozenset())
        if granted is None:
            return Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the bearer token is not one this server accepts: {needs}",
            )
        if scope not in granted:
            return Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the bearer token does not grant scope '{scope}', which {method.lstrip('/')} "
                f"needs (it grants {', '.join(sorted(granted))})",
            )
        return None
