"""A stream opened at ``start_time`` keeps that filter after it resumes from a token.

The call that resumes carries the token instead of ``start_time`` (``start`` is a oneof), so the
server no longer drops items timed before it; the SDK's stream must, or a late item (timed before
``start_time``, written after) appears only when a reconnect happened before it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from featurestore_client import RetryPolicy
from featurestore_client._anomalies import AnomalyStream
from featurestore_client._anomalies import anomaly_request
from featurestore_client._prediction_stream import PredictionStream
from featurestore_client._prediction_stream import prediction_stream_request
from featurestore_client._proto.v1 import anomaly_service_pb2
from featurestore_client._proto.v1 import prediction_service_pb2

from tests.unit.clients.fake_calls import StreamCall
from tests.unit.clients.fake_calls import Unavailable

START = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)


class _Server:
    """Answers each call with the next list of responses (a dropped connection after all but the
    last), and records the requests."""

    def __init__(self, *calls: list[Any]) -> None:
        self._calls = list(calls)
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> StreamCall:
        self.requests.append(request)
        responses = self._calls.pop(0)
        return StreamCall(responses, Unavailable("connection reset") if self._calls else None)


def _anomaly(name: str, at: datetime, token: str) -> anomaly_service_pb2.StreamAnomaliesResponse:
    response = anomaly_service_pb2.StreamAnomaliesResponse(resume_token=token)
    response.anomaly.anomaly_id = name
    response.anomaly.event_time.FromDatetime(at)
    return response


def test_anomalies_timed_before_start_time_are_dropped_after_a_resume() -> None:
    server = _Server(
        [_anomaly("a1", START, "t1")],
        # After the reconnect: a late anomaly, timed a microsecond before start_time.
        [_anomaly("late", START - timedelta(microseconds=1), "t2"), _anomaly("a2", START, "t3")],
    )
    request = anomaly_request(None, None, START, None)
    stream = AnomalyStream(server, request, RetryPolicy(), sleep=lambda _: None)
    assert [a.anomaly_id for a in stream] == ["a1", "a2"]
    assert server.requests[1].resume_token == "t1"
    assert stream.resume_token == "t3"  # the dropped item's token still moved the position


def test_predictions_answered_before_start_time_are_dropped_after_a_resume() -> None:
    def prediction(name: str, at: datetime, token: str) -> Any:
        response = prediction_service_pb2.StreamPredictionsResponse(resume_token=token)
        response.prediction.prediction_id = name
        response.prediction.response_time.FromDatetime(at)
        return response

    server = _Server(
        [prediction("p1", START, "t1")],
        [prediction("late", START - timedelta(seconds=1), "t2"), prediction("p2", START, "t3")],
    )
    request = prediction_stream_request("m", None, START, None)
    stream = PredictionStream(server, request, RetryPolicy(), sleep=lambda _: None)
    assert [p.prediction_id for p in stream] == ["p1", "p2"]


def test_without_start_time_nothing_is_dropped() -> None:
    server = _Server(
        [_anomaly("a1", START, "t1")], [_anomaly("old", START - timedelta(days=1), "t2")]
    )
    stream = AnomalyStream(server, anomaly_request(None, None, None, "t0"), RetryPolicy())
    assert [a.anomaly_id for a in stream] == ["a1", "old"]
