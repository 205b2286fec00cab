"""StreamAnomalies as an iterator that resumes by itself after a disconnect."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from featurestore_client._proto.v1 import anomaly_service_pb2
from featurestore_client._retry import RetryPolicy
from featurestore_client._streams import ResumableStream

__all__ = ["Anomaly", "AnomalyStream", "anomaly_request"]


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


def _anomaly(message: anomaly_service_pb2.StreamAnomaliesResponse) -> Anomaly | None:
    if not message.HasField("anomaly"):
        return None  # a checkpoint
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


class AnomalyStream(ResumableStream[Anomaly]):
    """Iterates anomalies; after a disconnect, reconnects with the latest token it holds.

    The server sends a token with every anomaly and with checkpoints (which this iterator does not
    yield), so a reconnect neither repeats nor skips an anomaly (:class:`ResumableStream`).
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
        super().__init__(open_call, request, retry, _anomaly, resume=resume, sleep=sleep)
