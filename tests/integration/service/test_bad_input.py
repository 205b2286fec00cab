"""Malformed, random and oversized requests to every RPC of a live server on the real stack.

Whatever a client sends, the answer is a status the client can act on: never UNKNOWN or INTERNAL,
and no details that give away the server's code (an exception class name, a traceback).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from featurestore._proto.v1 import anomaly_service_pb2
from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import prediction_service_pb2
from featurestore.service.testing import ServerThread
from tests.bad_input import FUZZ
from tests.bad_input import leaks
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.protobuf_strategies import RPCS
from tests.integration.service.protobuf_strategies import Rpc
from tests.integration.service.protobuf_strategies import request_bytes

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
_NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
_STREAM_S = 1.0
"""How long a well-formed streaming call is read: a subscription streams until cancelled."""
_ANSWER_S = 20.0
"""How long any other call may take: a first call loads a backend's client (MLflow, Feast)."""


def _call(
    channel: grpc.Channel, rpc: Rpc, data: bytes, stream_s: float = _ANSWER_S
) -> tuple[grpc.StatusCode, str]:
    """Send ``data`` as the request bytes of ``rpc``; the status and details it ends with.

    A streaming call is read for up to three responses or ``stream_s``, then cancelled.
    """
    try:
        if rpc.client_streaming:
            responses: Iterator[Any] = channel.stream_stream(rpc.path)(
                iter([data]), timeout=stream_s
            )
        elif rpc.server_streaming:
            responses = channel.unary_stream(rpc.path)(data, timeout=stream_s)
        else:
            channel.unary_unary(rpc.path)(data, timeout=_ANSWER_S)
            return grpc.StatusCode.OK, ""
        for _ in zip(range(3), responses, strict=False):
            pass
        responses.cancel()  # type: ignore[attr-defined]
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _base_requests(model_name: str) -> dict[str, Message]:
    """A request each of the store's RPCs answers, for the fuzz to change."""
    features = feature_service_pb2.GetOnlineFeaturesRequest()
    features.features.features.extend(["bars_1m:close", "rolling_1m:vwap_5m"])
    features.entities["symbol"].values.add(string_value="AAPL")
    predict = prediction_service_pb2.PredictRequest(model_name=model_name)
    predict.entities["symbol"].values.add(string_value="AAPL")
    anomalies = anomaly_service_pb2.StreamAnomaliesRequest(symbols=["AAPL"], min_score=0.5)
    anomalies.start_time.FromDatetime(NOW - timedelta(hours=1))
    export = dataset_service_pb2.ExportTrainingDatasetRequest()
    export.features.features.append("bars_1m:close")
    export.time_grid.symbols.append("AAPL")
    export.time_grid.start_time.FromDatetime(NOW - timedelta(minutes=10))
    export.time_grid.end_time.FromDatetime(NOW)
    export.time_grid.step.FromTimedelta(timedelta(minutes=1))
    requests = (features, predict, anomalies, export)
    by_type = {type(request): request for request in requests}
    return {rpc.path: by_type[rpc.request_type] for rpc in RPCS if rpc.request_type in by_type}


def _invalid_bytes(rpc: Rpc, count: int, seed: int = 15) -> list[bytes]:
    """``count`` random byte strings (fixed seed) that are not a request message of ``rpc``."""
    rng = random.Random(f"{seed}{rpc.path}")
    found: list[bytes] = []
    while len(found) < count:
        data = rng.randbytes(rng.randint(1, 200))
        if rpc.rejects(data):
            found.append(data)
    return found


@pytest.fixture
def channel(start_server: Callable[..., ServerThread]) -> Iterator[grpc.Channel]:
    server = start_server()
    with grpc.insecure_channel(server.target) as channel:
        yield channel


@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.path)
def test_random_bytes_get_invalid_argument(channel: grpc.Channel, rpc: Rpc) -> None:
    type_name = rpc.request_type.DESCRIPTOR.full_name
    for data in _invalid_bytes(rpc, 5):
        code, details = _call(channel, rpc, data)
        assert (code, details) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request: not a valid {type_name}",
        ), data


@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.path)
def test_an_oversized_request_gets_resource_exhausted_naming_the_limit(
    start_server: Callable[..., ServerThread], rpc: Rpc
) -> None:
    server = start_server(max_request_bytes=65_536)
    with grpc.insecure_channel(server.target) as channel:
        code, details = _call(channel, rpc, b"\x0a\x80\x80\x05" + bytes(81_920))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "65536" in details, details
    assert not leaks(details)


def _assert_answered(channel: grpc.Channel, rpc: Rpc, data: bytes) -> None:
    malformed = rpc.rejects(data)
    code, details = _call(channel, rpc, data, _ANSWER_S if malformed else _STREAM_S)
    assert code not in _NEVER, (rpc.path, data, code, details)
    assert not leaks(details), (rpc.path, data, details)
    if malformed:
        assert code is grpc.StatusCode.INVALID_ARGUMENT, (rpc.path, data, code, details)


@FUZZ
@given(rpc=st.sampled_from(RPCS), data=st.binary(max_size=256))
def test_fuzz_random_bytes_to_every_rpc(channel: grpc.Channel, rpc: Rpc, data: bytes) -> None:
    _assert_answered(channel, rpc, data)


@FUZZ
@given(st.data())
def test_fuzz_well_formed_random_requests_to_every_rpc(
    channel: grpc.Channel, models: RegisteredModels, data: st.DataObject
) -> None:
    rpc = data.draw(st.sampled_from(RPCS), label="rpc")
    base = _base_requests(models.name).get(rpc.path)
    _assert_answered(channel, rpc, data.draw(request_bytes(rpc, base), label="request"))
