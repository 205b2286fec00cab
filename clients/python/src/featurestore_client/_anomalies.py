"""StreamAnomalies as an iterator that resumes by itself after a disconnect."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from featurestore_client._convert import listed
from featurestore_client._proto.v1 import anomaly_service_pb2
from featurestore_client._streams import ResumableStream
from featurestore_client._streams import set_start

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
    request = anomaly_service_pb2.StreamAnomaliesRequest(
        symbols=list(listed("symbols", symbols or ()))
    )
    if min_score is not None:
        request.min_score = min_score
    set_start(request, start_time, resume_token)
    return request


class AnomalyStream(ResumableStream[Anomaly]):
    """Iterates anomalies; after a disconnect, reconnects with the latest token it holds.

    The server sends a token with every anomaly and with checkpoints (which this iterator does not
    yield), so a reconnect neither repeats nor skips an anomaly (:class:`ResumableStream`).
    """

    item_field = "anomaly"
    time_field = "event_time"

    def _convert(self, a: anomaly_service_pb2.Anomaly, resume_token: str) -> Anomaly:
        return Anomaly(
            anomaly_id=a.anomaly_id,
            symbol=a.symbol,
            event_time=a.event_time.ToDatetime(tzinfo=UTC),
            score=a.score,
            model_name=a.model_name,
            model_version=a.model_version,
            detected_at=a.detected_at.ToDatetime(tzinfo=UTC),
            resume_token=resume_token,
            threshold=a.threshold if a.HasField("threshold") else None,
            features=dict(a.features),
        )
