"""StreamPredictions: the predictions of one model from the predictions topic, resumable by token.

Predict logs every prediction it serves (:mod:`featurestore.prediction_log`) and the prediction feed
(:mod:`models.predictor`) publishes one per new feature row, both as ``PredictionLog`` events to
the predictions topic; a subscription reads that topic with the machinery every stream shares
(:mod:`.topic_stream`: a consumer per subscription, a token holding the position in every
partition, checkpoints) and keeps the predictions of the requested model and entities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.errors import ValidationError
from featurestore.events import PredictionLog
from featurestore.service.convert import entities_from_proto
from featurestore.service.convert import timestamp_from_proto
from featurestore.service.topic_stream import TopicSubscriptions

__all__ = [
    "PredictionFilter",
    "PredictionSubscriptions",
    "prediction_filter_from_proto",
    "prediction_to_proto",
]

Entity = frozenset[tuple[str, str]]
"""An entity as the log writes it: its (join key, value as text) pairs."""


@dataclass(frozen=True)
class PredictionFilter:
    """Which predictions a subscriber wants."""

    model_name: str
    entities: frozenset[Entity] = frozenset()
    """Only these entities; all when empty."""
    not_before: datetime | None = None
    """Only predictions answered (``response_time``) at or after this (aware) time."""

    def accepts(self, prediction: PredictionLog) -> bool:
        """Whether ``prediction`` passes every filter."""
        if prediction.model_name != self.model_name:
            return False
        if self.entities and frozenset(prediction.entity.items()) not in self.entities:
            return False
        return self.not_before is None or prediction.response_time >= self.not_before


PredictionSubscriptions: TypeAlias = TopicSubscriptions[PredictionLog]
"""Subscriptions to the :class:`PredictionLog` events of the predictions topic."""


def prediction_filter_from_proto(
    request: prediction_service_pb2.StreamPredictionsRequest, *, max_entities: int
) -> PredictionFilter:
    """The request's filters; INVALID_ARGUMENT naming the field when one is malformed."""
    if not request.model_name.strip():
        raise ValidationError("model_name: must not be empty", field="model_name")
    not_before = None
    if request.WhichOneof("start") == "start_time":
        not_before = timestamp_from_proto(request.start_time, "start_time")
    return PredictionFilter(
        model_name=request.model_name,
        entities=_entities(request.entities, max_entities),
        not_before=not_before,
    )


def _entities(columns: Mapping[str, types_pb2.ValueList], max_entities: int) -> frozenset[Entity]:
    if not columns:
        return frozenset()
    keys = entities_from_proto(columns, max_rows=max_entities)
    # As the log writes them (prediction_log's events): str() of each value.
    return frozenset(
        frozenset((k, str(v)) for k, v in zip(key.join_keys, key.values, strict=True))
        for key in keys
    )


def prediction_to_proto(event: PredictionLog) -> prediction_service_pb2.LoggedPrediction:
    """The wire form of a logged prediction (features that were missing are left out)."""
    message = prediction_service_pb2.LoggedPrediction(
        prediction_id=event.request_id,
        model_name=event.model_name,
        model_version=event.model_version,
        entity=dict(event.entity),
        score=event.prediction,
        features={k: v for k, v in event.features.items() if v is not None},
    )
    if event.feature_time is not None:
        message.feature_time.FromDatetime(event.feature_time)
    message.request_time.FromDatetime(event.request_time)
    message.response_time.FromDatetime(event.response_time)
    return message
