"""StreamPredictions: a model's live predictions, resumable by token like the anomaly stream."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any

from featurestore_client._convert import add_entities
from featurestore_client._proto.v1 import prediction_service_pb2
from featurestore_client._streams import ResumableStream
from featurestore_client._streams import set_start
from featurestore_client._types import EntityValue

__all__ = ["LoggedPrediction", "PredictionStream", "prediction_stream_request"]


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """A prediction as the prediction log holds it, with the token that resumes after it."""

    prediction_id: str
    """Predict's request id, or the feed's deterministic id (model, version, entity, time)."""
    model_name: str
    model_version: str
    entity: dict[str, str]
    score: float
    resume_token: str
    """Pass to ``stream_predictions(resume_token=...)`` to continue exactly after this one."""
    features: dict[str, float] = field(default_factory=dict)
    """The feature values the model saw, by ``view:feature`` (a missing one is absent)."""
    feature_time: datetime | None = None
    """Event time of the newest feature row used."""
    request_time: datetime | None = None
    response_time: datetime | None = None


def prediction_stream_request(
    model_name: str,
    entities: Mapping[str, Sequence[EntityValue]] | None,
    start_time: datetime | None,
    resume_token: str | None,
) -> prediction_service_pb2.StreamPredictionsRequest:
    """A StreamPredictionsRequest (resume_token wins over start_time; neither: from now)."""
    request = prediction_service_pb2.StreamPredictionsRequest(model_name=model_name)
    add_entities(request.entities, entities or {})
    set_start(request, start_time, resume_token)
    return request


def _time(message: Any, name: str) -> datetime | None:
    return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None


class PredictionStream(ResumableStream[LoggedPrediction]):
    """Iterates a model's predictions; after a disconnect, continues after the last one."""

    item_field = "prediction"
    time_field = "response_time"

    def _convert(
        self, p: prediction_service_pb2.LoggedPrediction, resume_token: str
    ) -> LoggedPrediction:
        return LoggedPrediction(
            prediction_id=p.prediction_id,
            model_name=p.model_name,
            model_version=p.model_version,
            entity=dict(p.entity),
            score=p.score,
            resume_token=resume_token,
            features=dict(p.features),
            feature_time=_time(p, "feature_time"),
            request_time=_time(p, "request_time"),
            response_time=_time(p, "response_time"),
        )
