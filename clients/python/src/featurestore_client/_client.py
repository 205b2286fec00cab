"""The blocking client of the featurestore gRPC API."""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import SupportsFloat
from typing import TypeVar

import grpc

from featurestore_client import _convert
from featurestore_client._anomalies import AnomalyStream
from featurestore_client._anomalies import anomaly_request
from featurestore_client._channel import DEFAULT_HEALTH_SERVICE
from featurestore_client._channel import open_channel
from featurestore_client._closing import Closing
from featurestore_client._datasets import export_request
from featurestore_client._datasets import read_pieces
from featurestore_client._errors import from_rpc_error
from featurestore_client._online import OnlineFeatures
from featurestore_client._predict import Predictions
from featurestore_client._predict import predict_request
from featurestore_client._predict import predictions
from featurestore_client._predict import with_idempotency_key
from featurestore_client._prediction_stream import PredictionStream
from featurestore_client._prediction_stream import prediction_stream_request
from featurestore_client._proto.v1 import anomaly_service_pb2_grpc
from featurestore_client._proto.v1 import dataset_service_pb2_grpc
from featurestore_client._proto.v1 import prediction_service_pb2
from featurestore_client._proto.v1 import prediction_service_pb2_grpc
from featurestore_client._retry import RetryPolicy
from featurestore_client._retry import call_with_retries
from featurestore_client._streams import ResumableStream
from featurestore_client._tracing import CallTracing
from featurestore_client._tracing import Metadata
from featurestore_client._types import EntityValue

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

__all__ = ["FeatureStoreClient"]

TOKEN_VARIABLE = "FEATURESTORE_TOKEN"
"""The environment variable a client takes its bearer token from when given none."""
_SERVICE = "featurestore.v1."
StreamT = TypeVar("StreamT", bound=ResumableStream[Any])


class FeatureStoreClient(Closing):
    """A connection to one featurestore server, to several, or to a name standing for several.

    Example::

        with FeatureStoreClient("127.0.0.1:50151") as client:
            features = client.get_online_features(
                ["bars_1m:close", "rolling_1m:vwap_5m"], entities={"symbol": ["AAPL", "MSFT"]}
            )
            print(features.to_dicts())

    Every call has a timeout (``timeout_s`` here, or per call) and is retried with backoff while
    the server answers UNAVAILABLE; other failures raise at once as
    :class:`~featurestore_client.FeatureStoreClientError` subclasses.

    Given several servers (a list, or a ``dns:///name:port`` that resolves to several), each call
    goes to the next healthy one (``round_robin`` with gRPC health checking): see
    ``featurestore_client._channel``.
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout_s: float | None = 5.0,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, int | str]] = (),
        tracer_provider: Any = None,
        load_balancing: str | None = None,
        health_check_service: str | None = DEFAULT_HEALTH_SERVICE,
    ) -> None:
        """Open a channel to ``target``.

        Args:
            target: The server's address (``host:port``), several (a list, or comma-separated),
                or ``dns:///name:port`` for every address of a name.
            token: A bearer token, sent as ``authorization: Bearer <token>`` on every call: as
                call credentials with TLS, else as each call's metadata (in clear text: use
                plaintext only on loopback or behind a proxy that ends TLS). Default: the
                ``FEATURESTORE_TOKEN`` environment variable, where it is set; ``""`` sends
                none.
            tls: Use TLS (implied by ``root_certificates``).
            root_certificates: PEM roots to trust instead of the system's, for a private CA.
            timeout_s: Default timeout of each call, retries included; None waits forever.
            retry: When and how to retry; the default retries UNAVAILABLE up to 4 attempts.
            options: Extra gRPC channel options.
            tracer_provider: The OpenTelemetry tracer provider of the calls' client spans
                (default: the global one); their context is sent to the server, which
                continues the trace. Needs the ``otel`` extra.
            load_balancing: ``round_robin`` or ``pick_first``; None: ``round_robin`` for
                several servers or a ``dns:`` name, gRPC's default (``pick_first``) otherwise.
            health_check_service: The health service name each server is watched under when
                balancing (default: FeatureService's); None turns health checking off.

        Raises:
            ValueError: A target without a port, or a name that does not resolve; a token gRPC
                cannot send (not printable ASCII); a timeout that is not positive.
        """
        token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
        if token and not _SENDABLE_TOKEN.fullmatch(token):
            # Sent as is, every call would fail with INTERNAL "Invalid metadata". Not echoed:
            # it is a secret.
            raise ValueError(
                "token: gRPC sends only printable ASCII in a header (no line break, space at"
                " either end or non-ASCII character)"
            )
        credentials = None
        self._metadata: Metadata = ()
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            if token:
                # Call credentials: gRPC adds the header to every call, over TLS only.
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.access_token_call_credentials(token)
                )
        elif token:
            # gRPC refuses call credentials on a plaintext channel (a loopback server, or one
            # behind a proxy that ends TLS), so the same header goes as each call's metadata.
            self._metadata = (("authorization", f"Bearer {token}"),)
        self._channel = open_channel(
            target,
            credentials=credentials,
            options=options,
            load_balancing=load_balancing,
            health_check_service=health_check_service,
        )
        self._tracing = CallTracing(tracer_provider)
        self._timeout_s = _checked_timeout(timeout_s)
        self._retry = retry or RetryPolicy()
        # The generated stubs are unannotated.
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._anomalies = anomaly_service_pb2_grpc.AnomalyServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._datasets = dataset_service_pb2_grpc.DatasetServiceStub(self._channel)  # type: ignore[no-untyped-call]
        # Bytes in and out: the SDK writes the request and decodes the response into columns
        # itself (_convert, _columns), without a protobuf object per value.
        self._online_features = self._channel.unary_unary(
            "/featurestore.v1.FeatureService/GetOnlineFeatures"
        )

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
        request = _convert.online_request(features, feature_service, entities)
        response: bytes = self._call(
            "FeatureService/GetOnlineFeatures", self._online_features, request, timeout_s
        )
        return _convert.online_features(response, entities)

    def predict(
        self,
        model_name: str,
        *,
        entities: Mapping[str, Sequence[EntityValue]],
        alias: str | None = None,
        version: str | int | None = None,
        inline_features: Mapping[str, Sequence[SupportsFloat | None]] | None = None,
        timeout_s: float | None = None,
    ) -> Predictions:
        """Score entities with a registered model (alias "champion" unless told otherwise).

        The server reads the model's features of each entity from the online store, except
        those given in ``inline_features`` (``"view:feature"`` to one value per row); a missing
        feature is passed to the model as NaN and its status says why.

        Raises:
            InvalidArgumentError: A malformed request; the message names the field.
            NotFoundError: The model, alias or version does not exist (named in the message).
            UnavailableError: The server, the online store or MLflow stayed unavailable.
        """
        if alias is not None and version is not None:
            raise ValueError("give alias or version, not both")
        request = predict_request(model_name, alias, version, entities, inline_features)
        response: prediction_service_pb2.PredictResponse = self._call(
            "PredictionService/Predict",
            with_idempotency_key(self._predictions.Predict),
            request,
            timeout_s,
        )
        return predictions(response, entities)

    def stream_anomalies(
        self,
        *,
        symbols: Collection[str] | None = None,
        min_score: float | None = None,
        start_time: datetime | None = None,
        resume_token: str | None = None,
        resume: bool = True,
    ) -> AnomalyStream:
        """Live anomalies, from now, from ``start_time`` or just after ``resume_token``.

        Iterate the returned stream; it reconnects by itself after a disconnect (``resume``),
        continuing after the last message received, so nothing is missed or repeated.
        ``stream.resume_token`` is where a later call would continue. The stream has no deadline:
        close it to stop.

        Example::

            with client.stream_anomalies(symbols=["IBM"], min_score=0.8) as stream:
                for anomaly in stream:
                    print(anomaly.symbol, anomaly.score, anomaly.event_time)
        """
        request = anomaly_request(symbols, min_score, start_time, resume_token)
        return self._resumable(AnomalyStream, self._anomalies.StreamAnomalies, request, resume)

    def stream_predictions(
        self,
        model_name: str,
        *,
        entities: Mapping[str, Sequence[EntityValue]] | None = None,
        start_time: datetime | None = None,
        resume_token: str | None = None,
        resume: bool = True,
    ) -> PredictionStream:
        """A model's predictions as they are made (by Predict and by the prediction feed).

        From now, from ``start_time`` or just after ``resume_token``; only ``entities`` (join
        key to values, as in :meth:`predict`) when given. Iterate the returned stream; it
        reconnects by itself after a disconnect (``resume``) without missing or repeating a
        prediction, and ``stream.resume_token`` is where a later call would continue.

        Example::

            with client.stream_predictions("featurestore-direction") as stream:
                for p in stream:
                    print(p.entity, p.score, p.feature_time)

        Raises (when iterated):
            NotFoundError: No model of that name is registered.
            InvalidArgumentError: A malformed request or resume token.
        """
        request = prediction_stream_request(model_name, entities, start_time, resume_token)
        method = self._predictions.StreamPredictions
        return self._resumable(PredictionStream, method, request, resume)

    def export_training_dataset(
        self,
        features: Sequence[str] | None = None,
        *,
        feature_service: str | None = None,
        entity_rows: Any = None,
        symbols: Sequence[str] | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        step: timedelta | None = None,
        label_horizon: timedelta | None = None,
        full_feature_names: bool = False,
        batch_rows: int = 0,
        timeout_s: float | None = None,
    ) -> pa.Table:
        """A point-in-time correct training set as an Arrow table (``.to_pandas()`` for pandas).

        Entity rows are either ``entity_rows`` (a pandas DataFrame or Arrow table with the join
        key and an ``event_timestamp`` column) or a grid: every ``symbols`` x
        ``[start_time, end_time)`` every ``step``. ``label_horizon`` adds ``forward_return`` and
        ``direction`` from strictly after each row's time. Needs the ``arrow`` extra (pyarrow).

        Raises:
            InvalidArgumentError: A malformed request; the message names the field.
            NotFoundError: An unknown feature, view or feature service.
            UnavailableError: The server or the offline store stayed unavailable.
        """
        if (features is None) == (feature_service is None):
            raise ValueError("give either features or feature_service")
        grid = None
        if entity_rows is None:
            if symbols is None or start_time is None or end_time is None or step is None:
                raise ValueError("give entity_rows, or symbols, start_time, end_time and step")
            grid = (symbols, start_time, end_time, step)
        request = export_request(
            features,
            feature_service,
            entity_rows,
            grid,
            label_horizon,
            batch_rows,
            full_feature_names,
        )
        method = self._datasets.ExportTrainingDataset
        return self._call(
            "DatasetService/ExportTrainingDataset",
            lambda r, **call: read_pieces(method(r, **call)),
            request,
            timeout_s,
        )

    def _resumable(self, stream: type[StreamT], method: Any, request: Any, resume: bool) -> StreamT:
        """A resumable stream of ``method``; every reconnection continues the caller's trace."""
        metadata = (*self._metadata, *self._tracing.context())
        return stream(lambda r: method(r, metadata=metadata), request, self._retry, resume=resume)

    def _call(self, name: str, method: Any, request: Any, timeout_s: float | None) -> Any:
        timeout = self._timeout_s if timeout_s is None else _checked_timeout(timeout_s)
        try:
            with self._tracing.call(_SERVICE + name, self._metadata) as metadata:
                return call_with_retries(
                    self._retry,
                    timeout,
                    lambda remaining: method(request, timeout=remaining, metadata=metadata),
                )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


_SENDABLE_TOKEN = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
"""What a gRPC (HTTP/2) header value may hold: printable ASCII, no space at either end."""


def _checked_timeout(timeout_s: float | None) -> float | None:
    """``timeout_s``, or ValueError when it is not a positive number of seconds (or None)."""
    if timeout_s is not None and not timeout_s > 0:  # also refuses NaN
        raise ValueError(f"timeout_s must be positive (None waits forever), not {timeout_s}")
    return timeout_s
