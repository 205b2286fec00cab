"""The blocking client of the featurestore gRPC API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from featurestore_client import _convert
from featurestore_client._errors import from_rpc_error
from featurestore_client._proto.v1 import feature_service_pb2, feature_service_pb2_grpc
from featurestore_client._retry import RetryPolicy, call_with_retries
from featurestore_client._types import EntityValue, OnlineFeatures

__all__ = ["FeatureStoreClient"]


class FeatureStoreClient:
    """A connection to one featurestore server (or a load balancer in front of several).

    Example::

        with FeatureStoreClient("127.0.0.1:50151") as client:
            features = client.get_online_features(
                ["bars_1m:close", "rolling_1m:vwap_5m"], entities={"symbol": ["AAPL", "MSFT"]}
            )
            print(features.to_dicts())

    Every call has a timeout (``timeout_s`` here, or per call) and is retried with backoff while
    the server answers UNAVAILABLE; other failures raise at once as
    :class:`~featurestore_client.FeatureStoreClientError` subclasses.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout_s: float | None = 5.0,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, int | str]] = (),
    ) -> None:
        """Open a channel to ``target`` (``host:port``).

        Args:
            target: The server's address.
            token: A bearer token, sent as ``authorization: Bearer <token>`` on every call.
            tls: Use TLS (implied by ``root_certificates``).
            root_certificates: PEM roots to trust instead of the system's, for a private CA.
            timeout_s: Default timeout of each call, retries included; None waits forever.
            retry: When and how to retry; the default retries UNAVAILABLE up to 4 attempts.
            options: Extra gRPC channel options.
        """
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, credentials, options=list(options))
        else:
            self._channel = grpc.insecure_channel(target, options=list(options))
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._features = feature_service_pb2_grpc.FeatureServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def get_online_features(
        self,
        features: Sequence[str] | None = None,
        *,
        entities: Mapping[str, Sequence[EntityValue]],
        feature_service: str | None = None,
        timeout_s: float | None = None,
    ) -> OnlineFeatures:
        """The latest values of features for many entities, with status and event time.

        Args:
            features: References such as ``"bars_1m:close"``; or give ``feature_service``.
            entities: Join key columns, for example ``{"symbol": ["AAPL", "MSFT"]}``.
            feature_service: The name of a feature service instead of ``features``.
            timeout_s: This call's timeout (default: the client's).

        Raises:
            InvalidArgumentError: A malformed request; the message names the field.
            NotFoundError: An unknown feature, view or feature service, named in the message.
            UnavailableError: The server or the online store stayed unavailable.
        """
        if (features is None) == (feature_service is None):
            raise ValueError("give either features or feature_service")
        request = _convert.request(features, feature_service, entities)
        response: feature_service_pb2.GetOnlineFeaturesResponse = self._call(
            self._features.GetOnlineFeatures, request, timeout_s
        )
        return _convert.online_features(response, entities)

    def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        timeout = self._timeout_s if timeout_s is None else timeout_s
        try:
            return call_with_retries(
                self._retry,
                timeout,
                lambda remaining: method(request, timeout=remaining, metadata=self._metadata),
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> FeatureStoreClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
