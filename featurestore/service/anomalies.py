"""AnomalyService: StreamAnomalies, a thin servicer over :class:`AnomalySubscriptions`."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import grpc

from featurestore._proto.v1 import anomaly_service_pb2
from featurestore._proto.v1 import anomaly_service_pb2_grpc
from featurestore.errors import ValidationError
from featurestore.events import Anomaly
from featurestore.service.anomaly_stream import AnomalyFilter
from featurestore.service.anomaly_stream import AnomalySubscriptions
from featurestore.service.convert import timestamp_from_proto
from featurestore.service.topic_stream import start_from_request

__all__ = ["AnomalyServicer", "anomaly_to_proto", "filter_from_proto"]


def filter_from_proto(request: anomaly_service_pb2.StreamAnomaliesRequest) -> AnomalyFilter:
    """The request's filters; INVALID_ARGUMENT naming the field when one is malformed."""
    if math.isnan(request.min_score) or math.isinf(request.min_score):
        raise ValidationError("min_score: must be a finite number", field="min_score")
    for i, symbol in enumerate(request.symbols):
        if not symbol.strip():
            raise ValidationError(f"symbols[{i}]: must not be empty", field=f"symbols[{i}]")
    not_before = None
    if request.WhichOneof("start") == "start_time":
        not_before = timestamp_from_proto(request.start_time, "start_time")
    return AnomalyFilter(
        symbols=frozenset(request.symbols),
        min_score=request.min_score if request.HasField("min_score") else float("-inf"),
        not_before=not_before,
    )


def anomaly_to_proto(anomaly: Anomaly) -> anomaly_service_pb2.Anomaly:
    """The wire form of a domain anomaly."""
    message = anomaly_service_pb2.Anomaly(
        anomaly_id=anomaly.anomaly_id,
        symbol=anomaly.symbol,
        score=anomaly.score,
        model_name=anomaly.model_name,
        model_version=anomaly.model_version,
        features=dict(anomaly.features),
    )
    message.event_time.FromDatetime(anomaly.event_time)
    message.detected_at.FromDatetime(anomaly.detected_at)
    if anomaly.threshold is not None:
        message.threshold = anomaly.threshold
    return message


class AnomalyServicer(anomaly_service_pb2_grpc.AnomalyServiceServicer):
    """StreamAnomalies: validate, subscribe, convert (errors: the method wrapper)."""

    def __init__(self, subscriptions: AnomalySubscriptions) -> None:
        """Serve the anomalies of ``subscriptions``."""
        self._subscriptions = subscriptions

    async def StreamAnomalies(  # noqa: N802  (the generated base class names it)
        self,
        request: anomaly_service_pb2.StreamAnomaliesRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[anomaly_service_pb2.StreamAnomaliesResponse]:
        """Stream the anomalies the request filters, from its start, with resume tokens."""
        wanted = filter_from_proto(request)
        start = start_from_request(request, self._subscriptions)
        async for item in self._subscriptions.subscribe(start, wanted.accepts):
            response = anomaly_service_pb2.StreamAnomaliesResponse(resume_token=item.resume_token)
            if item.event is not None:
                response.anomaly.CopyFrom(anomaly_to_proto(item.event))
            yield response
