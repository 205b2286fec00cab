"""StreamAnomalies as an iterator that resumes by itself after a disconnect."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import grpc

from featurestore_client._errors import from_rpc_error
from featurestore_client._proto.v1 import anomaly_service_pb2
from featurestore_client._retry import RetryPolicy

__all__ = ["Anomaly", "AnomalyStream", "anomaly_request"]

_RESUMABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL}
)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An anomaly scored by a model, with the token that resumes just after it."""

    anomaly_id: str
    symbol: str
    event_time: datetime
    score: float
    model_name: str
    model_version: str
    detected_at: datetime
    resume_token: str
    """Pass to ``stream_anomalies(resume_token=...)`` to continue exactly after this anomaly."""
    threshold: float | None = None
    features: dict[str, float] = field(default_factory=dict)


def anomaly_request(
    symbols: Collection[str] | None,
    min_score: float | None,
    start_time: datetime | None,
    resume_token: str | None,
) -> anomaly_service_pb2.StreamAnomaliesRequest:
    """A StreamAnomaliesRequest (resume_token wins over start_time; neither: from now)."""
    request = anomaly_service_pb2.StreamAnomaliesRequest(symbols=list(symbols or ()))
    if min_score is not None:
        request.min_score = min_score
    if resume_token is not None:
        request.resume_token = resume_token
    elif start_time is not None:
        if start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        request.start_time.FromDatetime(start_time.astimezone(UTC))
    else:
        request.latest.SetInParent()
    return request


def _anomaly(message: anomaly_service_pb2.StreamAnomaliesResponse) -> Anomaly:
    a = message.anomaly
    return Anomaly(
        anomaly_id=a.anomaly_id,
        symbol=a.symbol,
        event_time=a.event_time.ToDatetime(tzinfo=UTC),
        score=a.score,
        model_name=a.model_name,
        model_version=a.model_version,
        detected_at=a.detected_at.ToDatetime(tzinfo=UTC),
        resume_token=message.resume_token,
        threshold=a.threshold if a.HasField("threshold") else None,
        features=dict(a.features),
    )


class AnomalyStream:
    """Iterates anomalies; after a disconnect, reconnects with the latest token it holds.

    The server sends a token with every anomaly and with checkpoints (which this iterator does not
    yield), so a reconnect neither repeats nor skips an anomaly. Reconnects back off as
    :class:`RetryPolicy` says; the attempt count resets whenever a message arrives, and the
    stream raises once ``max_attempts`` connections in a row fail. Close it (or use ``with``) to
    cancel the call.
    """

    def __init__(
        self,
        open_call: Callable[[anomaly_service_pb2.StreamAnomaliesRequest], Any],
        request: anomaly_service_pb2.StreamAnomaliesRequest,
        retry: RetryPolicy,
        *,
        resume: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._open_call = open_call
        self._request = request
        self._retry = retry
        self._resume = resume
        self._sleep = sleep
        self._call: Any = None
        self._closed = False
        self.resume_token: str | None = (
            request.resume_token if request.WhichOneof("start") == "resume_token" else None
        )
        """The latest token received (or given): where a new stream would continue."""
        self.reconnects = 0
        """How many times the stream reconnected."""

    def __iter__(self) -> Iterator[Anomaly]:
        failures = 0
        while not self._closed:
            request = anomaly_service_pb2.StreamAnomaliesRequest()
            request.CopyFrom(self._request)
            if self.resume_token is not None:
                request.resume_token = self.resume_token
            self._call = self._open_call(request)
            try:
                for message in self._call:
                    failures = 0
                    self.resume_token = message.resume_token
                    if message.HasField("anomaly"):
                        yield _anomaly(message)
                return
            except grpc.RpcError as error:
                if self._closed and error.code() is grpc.StatusCode.CANCELLED:
                    return
                failures += 1
                if (
                    not self._resume
                    or error.code() not in _RESUMABLE
                    or failures >= self._retry.max_attempts
                ):
                    raise from_rpc_error(error) from None
                self._sleep(self._retry.backoff_s(failures - 1))
                self.reconnects += 1
            finally:
                self._call.cancel()

    def close(self) -> None:
        """Cancel the call; iteration ends."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    def __enter__(self) -> AnomalyStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
