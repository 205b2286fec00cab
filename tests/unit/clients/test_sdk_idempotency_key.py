"""The Python SDK sends one idempotency key per Predict call, the same on every retry of it.

A gRPC server in this process answers UNAVAILABLE to the first attempts of each call (as when the
connection broke after the server had answered and logged) and records each attempt's metadata;
the real client retries. The server derives the prediction ids from the key, so the retried call
logs the same ids (tests/unit/service/test_predict_idempotency.py). A read carries no key.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from featurestore_client._proto.v1 import feature_service_pb2
from featurestore_client._proto.v1 import prediction_service_pb2

KEY = "idempotency-key"
FAILURES = 2
"""UNAVAILABLE answers before each call's attempt that succeeds."""


class _Recorded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: list[list[str]] = []

    def attempt(self, context: grpc.ServicerContext) -> None:
        """Record the attempt's keys; abort every attempt but each call's last."""
        with self.lock:
            self.keys.append([v for k, v in context.invocation_metadata() if k == KEY])
            failed = len(self.keys) % (FAILURES + 1) != 0
        if failed:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost after the answer")


@pytest.fixture
def flaky() -> Iterator[tuple[str, _Recorded]]:
    recorded = _Recorded()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))

    def predict(
        request: prediction_service_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> prediction_service_pb2.PredictResponse:
        recorded.attempt(context)
        return prediction_service_pb2.PredictResponse(model_name="m", model_version="1")

    def read(
        request: feature_service_pb2.GetOnlineFeaturesRequest, context: grpc.ServicerContext
    ) -> feature_service_pb2.GetOnlineFeaturesResponse:
        recorded.attempt(context)
        return feature_service_pb2.GetOnlineFeaturesResponse()

    predicting = grpc.unary_unary_rpc_method_handler(
        predict,
        request_deserializer=prediction_service_pb2.PredictRequest.FromString,
        response_serializer=prediction_service_pb2.PredictResponse.SerializeToString,
    )
    reading = grpc.unary_unary_rpc_method_handler(
        read,
        request_deserializer=feature_service_pb2.GetOnlineFeaturesRequest.FromString,
        response_serializer=feature_service_pb2.GetOnlineFeaturesResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "featurestore.v1.PredictionService", {"Predict": predicting}
            ),
            grpc.method_handlers_generic_handler(
                "featurestore.v1.FeatureService", {"GetOnlineFeatures": reading}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", recorded
    server.stop(None)


RETRY = RetryPolicy(max_attempts=FAILURES + 1, initial_backoff_s=0.001, max_backoff_s=0.01)


def test_each_predict_call_sends_one_key_on_every_attempt(flaky: tuple[str, _Recorded]) -> None:
    target, recorded = flaky
    with FeatureStoreClient(target, token="", retry=RETRY) as client:
        for _ in range(2):
            assert client.predict("m", entities={"symbol": ["IBM"]}).model_version == "1"
    calls = [recorded.keys[i : i + FAILURES + 1] for i in (0, FAILURES + 1)]
    for attempts in calls:
        assert all(len(keys) == 1 for keys in attempts), attempts
        assert {keys[0] for keys in attempts} == {attempts[0][0]}  # the same on every retry
        assert re.fullmatch(r"[0-9a-f]{32}", attempts[0][0])
    assert calls[0][0] != calls[1][0]  # a new key per call


def test_a_read_sends_no_key(flaky: tuple[str, _Recorded]) -> None:
    target, recorded = flaky
    with FeatureStoreClient(target, token="", retry=RETRY) as client:
        client.get_online_features(["v:f"], entities={"symbol": ["IBM"]})
    assert recorded.keys == [[]] * (FAILURES + 1)
