"""StreamPredictions on the real Kafka, schema registry and MLflow: resume, filters, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import grpc
import pytest

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import prediction_service_pb2_grpc
from featurestore._proto.v1 import types_pb2
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.events import PredictionLog
from featurestore.service.testing import ServerThread
from models.publish import PredictionPublisher
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.stream_resume import client_process
from tests.integration.service.stream_resume import resumes_exactly_once

pytestmark = pytest.mark.integration

WANTED = ("AAA", "BBB")
T0 = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)


@pytest.fixture
def topic(new_topic: Callable[..., str]) -> str:
    return new_topic("predictions")


@pytest.fixture
def server(topic: str, start_server: Callable[..., ServerThread]) -> ServerThread:
    """A live server whose prediction log is ``topic``."""
    return start_server(topics=TopicSettings(predictions=topic))


_STUB = prediction_service_pb2_grpc.PredictionServiceStub


def _event(i: int, model: str) -> PredictionLog:
    """Every third prediction is of an unwanted symbol, every fifth of another model."""
    symbol = "ZZZ" if i % 3 == 2 else WANTED[i % 2]
    now = datetime.now(UTC)
    return PredictionLog(
        request_id=f"p{i:05d}",
        model_name="other-model" if i % 5 == 4 else model,
        model_version="1",
        entity={"symbol": symbol},
        prediction=i / 10,
        request_time=now,
        response_time=now,
        features={"bars_1m:close": 100.0 + i},
        feature_time=T0 + timedelta(seconds=i),
    )


def _expected(ids: range, model: str) -> list[str]:
    return [
        e.request_id
        for e in map(lambda i: _event(i, model), ids)
        if e.model_name == model and e.entity["symbol"] in WANTED
    ]


def _produce(publisher: PredictionPublisher, ids: range, model: str, pause_s: float = 0) -> None:
    for i in ids:
        publisher.publish([_event(i, model)])
        if pause_s:
            time.sleep(pause_s)
    publisher.flush()


def test_killed_client_resumes_with_its_last_token_exactly_once(
    stack: Settings, topic: str, models: RegisteredModels, server: ServerThread
) -> None:
    publisher = PredictionPublisher.from_settings(stack, topic)
    began = datetime.now(UTC) - timedelta(seconds=1)
    _produce(publisher, range(0, 30), models.name)
    resumes_exactly_once(
        lambda start: client_process(
            "prediction_client", server.target, models.name, ",".join(WANTED), start
        ),
        f"time:{began.isoformat()}",
        threading.Thread(target=_produce, args=(publisher, range(30, 120), models.name, 0.01)),
        read_first=12,
        expected=_expected(range(0, 120), models.name),
        what="a prediction",
    )


def _stream(
    target: str, request: prediction_service_pb2.StreamPredictionsRequest
) -> Iterator[prediction_service_pb2.StreamPredictionsResponse]:
    channel = grpc.insecure_channel(target)
    stub = _STUB(channel)  # type: ignore[no-untyped-call]
    call = stub.StreamPredictions(request, timeout=30)
    try:
        yield from call
    finally:
        call.cancel()
        channel.close()


def test_predict_calls_are_streamed_with_their_features_through_the_sdk(
    models: RegisteredModels, server: ServerThread
) -> None:
    from featurestore_client import FeatureStoreClient

    columns = {
        "bars_1m:close": [101.0, 202.0],
        "rolling_1m:vwap_5m": [100.5, 201.5],
        "bars_1m:volume": [1000.0, 2000.0],
    }
    began = datetime.now(UTC) - timedelta(seconds=1)
    with FeatureStoreClient(server.target, timeout_s=60) as client:
        reply = client.predict(
            models.name, entities={"symbol": ["AAA", "BBB"]}, version=1, inline_features=columns
        )
        served = {p.request_id: p.score for p in reply.predictions}
        got = {}
        with client.stream_predictions(
            models.name, entities={"symbol": ["AAA"]}, start_time=began
        ) as stream:
            for prediction in stream:
                got[prediction.prediction_id] = prediction
                break  # only AAA's is streamed: the filter holds BBB's back
        token = stream.resume_token
    (aaa,) = got.values()
    assert aaa.score == served[aaa.prediction_id] and aaa.entity == {"symbol": "AAA"}
    assert aaa.model_version == "1" and token == aaa.resume_token
    assert aaa.features == {
        "bars_1m:close": 101.0, "rolling_1m:vwap_5m": 100.5, "bars_1m:volume": 1000.0
    }  # fmt: skip


def test_bad_input_has_precise_statuses(models: RegisteredModels, server: ServerThread) -> None:
    cases = [
        (prediction_service_pb2.StreamPredictionsRequest(model_name="no-such-model-x"),
         grpc.StatusCode.NOT_FOUND, "no-such-model-x"),
        (prediction_service_pb2.StreamPredictionsRequest(),
         grpc.StatusCode.INVALID_ARGUMENT, "model_name"),
        (prediction_service_pb2.StreamPredictionsRequest(
            model_name=models.name, resume_token="v1.garbage!"),
         grpc.StatusCode.INVALID_ARGUMENT, "resume_token"),
        (prediction_service_pb2.StreamPredictionsRequest(
            model_name=models.name, entities={"symbol": types_pb2.ValueList()}),
         grpc.StatusCode.INVALID_ARGUMENT, "entities"),
    ]  # fmt: skip
    for request, code, named in cases:
        with pytest.raises(grpc.RpcError) as raised:
            next(_stream(server.target, request))
        error = raised.value
        assert error.code() == code, (request, error.details())
        assert named in error.details()
        assert "Traceback" not in error.details()
