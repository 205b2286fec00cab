"""Pure parts of StreamPredictions: filters, start, wire form, the scope it needs."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.errors import ValidationError
from featurestore.events import PredictionLog
from featurestore.service.auth import scope_of
from featurestore.service.prediction_stream import PredictionFilter
from featurestore.service.prediction_stream import prediction_filter_from_proto
from featurestore.service.prediction_stream import prediction_to_proto
from featurestore.service.stream_position import StreamPosition
from featurestore.service.topic_stream import StartAt
from featurestore.service.topic_stream import TopicSubscriptions
from featurestore.service.topic_stream import start_from_request

T = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def _log(symbol: str = "IBM", model: str = "m", answered: datetime = T) -> PredictionLog:
    return PredictionLog(
        request_id="r1",
        model_name=model,
        model_version="2",
        entity={"symbol": symbol},
        prediction=0.25,
        request_time=answered - timedelta(milliseconds=3),
        response_time=answered,
        features={"bars_1m:close": 101.5, "rolling_1m:vwap_5m": None},
        feature_time=T - timedelta(minutes=1),
    )


def _symbols(*symbols: str) -> dict[str, types_pb2.ValueList]:
    return {
        "symbol": types_pb2.ValueList(values=[types_pb2.Value(string_value=s) for s in symbols])
    }


def test_filter_keeps_the_model_the_entities_and_the_time() -> None:
    everything = PredictionFilter("m")
    assert everything.accepts(_log())
    assert not everything.accepts(_log(model="other"))
    some = PredictionFilter("m", frozenset({frozenset({("symbol", "AAPL")})}))
    assert some.accepts(_log("AAPL"))
    assert not some.accepts(_log("IBM"))
    later = PredictionFilter("m", not_before=T + timedelta(seconds=1))
    assert not later.accepts(_log())
    assert later.accepts(_log(answered=T + timedelta(seconds=1)))


def test_filter_from_request() -> None:
    request = prediction_service_pb2.StreamPredictionsRequest(
        model_name="m", entities=_symbols("AAPL", "IBM")
    )
    request.start_time.FromDatetime(T)
    wanted = prediction_filter_from_proto(request, max_entities=10)
    assert wanted.accepts(_log("IBM"))
    assert not wanted.accepts(_log("MSFT"))
    assert wanted.not_before == T
    assert not wanted.accepts(_log("IBM", answered=T - timedelta(microseconds=1)))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (prediction_service_pb2.StreamPredictionsRequest(), "model_name"),
        (prediction_service_pb2.StreamPredictionsRequest(model_name="  "), "model_name"),
        (
            prediction_service_pb2.StreamPredictionsRequest(
                model_name="m", entities={"symbol": types_pb2.ValueList()}
            ),
            "entities",
        ),
    ],
)
def test_bad_requests_name_the_field(
    request_: prediction_service_pb2.StreamPredictionsRequest, field: str
) -> None:
    with pytest.raises(ValidationError, match=field) as raised:
        prediction_filter_from_proto(request_, max_entities=10)
    assert raised.value.field == field


def test_too_many_entities_is_refused() -> None:
    request = prediction_service_pb2.StreamPredictionsRequest(
        model_name="m", entities=_symbols("A", "B", "C")
    )
    with pytest.raises(ValidationError, match="at most 2"):
        prediction_filter_from_proto(request, max_entities=2)


def test_wire_form_leaves_missing_features_out() -> None:
    message = prediction_to_proto(_log())
    assert message.prediction_id == "r1"
    assert (message.model_name, message.model_version) == ("m", "2")
    assert dict(message.entity) == {"symbol": "IBM"}
    assert message.score == 0.25
    assert dict(message.features) == {"bars_1m:close": 101.5}
    assert message.feature_time.ToDatetime(tzinfo=UTC) == T - timedelta(minutes=1)
    assert message.response_time.ToDatetime(tzinfo=UTC) == T
    assert message.request_time.ToDatetime(tzinfo=UTC) == T - timedelta(milliseconds=3)
    no_time = prediction_to_proto(
        PredictionLog("r", "m", "1", {"symbol": "A"}, 1.0, T, T, features={})
    )
    assert not no_time.HasField("feature_time")


def test_start_from_a_token_of_the_topic_only() -> None:
    subscriptions = TopicSubscriptions.__new__(TopicSubscriptions)
    subscriptions.topic = "predictions"
    token = StreamPosition("predictions", {0: 4, 1: 9}).token()
    request = prediction_service_pb2.StreamPredictionsRequest(model_name="m", resume_token=token)
    start = start_from_request(request, subscriptions)
    assert start == StartAt(position=StreamPosition("predictions", {0: 4, 1: 9}))
    request.resume_token = StreamPosition("anomalies", {0: 1}).token()
    with pytest.raises(ValidationError, match="resume_token"):
        start_from_request(request, subscriptions)
    assert (
        start_from_request(
            prediction_service_pb2.StreamPredictionsRequest(model_name="m"), subscriptions
        )
        == StartAt()
    )


def test_stream_predictions_needs_the_predict_scope() -> None:
    assert scope_of("/featurestore.v1.PredictionService/StreamPredictions") == "predict"
