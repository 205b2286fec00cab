"""Server reflection (v1 and v1alpha) resolves method symbols, for grpcurl, ghz and Python."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from tests.go_tools import go_tool

pytestmark = pytest.mark.integration

METHODS = {
    "featurestore.v1.FeatureService.GetOnlineFeatures": "featurestore/v1/feature_service.proto",
    "featurestore.v1.PredictionService.Predict": "featurestore/v1/prediction_service.proto",
    "featurestore.v1.AnomalyService.StreamAnomalies": "featurestore/v1/anomaly_service.proto",
    "featurestore.v1.DatasetService.ExportTrainingDataset": "featurestore/v1/dataset_service.proto",
    "grpc.health.v1.Health.Check": "grpc_health/v1/health.proto",
}


@pytest.fixture
def server(
    start_server: Callable[..., ServerThread], write_rows: Callable[[list[FeatureRow]], None]
) -> ServerThread:
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol="IBM"), now, {"close": 151.25})])
    return start_server()


def test_grpcurl_describes_methods_and_enum_values(server: ServerThread) -> None:
    grpcurl = go_tool("grpcurl")
    for symbol in (*METHODS, "featurestore.v1.FEATURE_STATUS_PRESENT"):
        described = subprocess.run(
            [grpcurl, "-plaintext", server.target, "describe", symbol],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert described.returncode == 0, described.stderr
        kind = "an enum value" if "FEATURE_STATUS" in symbol else "a method"
        assert f"{symbol.replace('v1.FEATURE', 'v1.FeatureStatus.FEATURE')} is {kind}" in (
            described.stdout
        )
    listed = subprocess.run(
        [grpcurl, "-plaintext", server.target, "list"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= (
        set(listed)
    )


def test_ghz_calls_a_method_found_by_reflection_only(server: ServerThread) -> None:
    request = {
        "features": {"features": ["bars_1m:close"]},
        "entities": {"symbol": {"values": [{"stringValue": "IBM"}]}},
    }
    run = subprocess.run(
        [go_tool("ghz"), "--insecure", "--call", "featurestore.v1.FeatureService.GetOnlineFeatures",
         "-d", json.dumps(request), "-n", "40", "-c", "2", "--format", "json", server.target],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["count"] == 40
    assert report["statusCodeDistribution"] == {"OK": 40}, report.get("errorDistribution")


def test_python_reflection_client_over_v1alpha(server: ServerThread) -> None:
    with grpc.insecure_channel(server.target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        for symbol, file_name in METHODS.items():
            assert database.FindFileContainingSymbol(symbol).name == file_name


def test_v1_reflection_answers_the_same_protocol(server: ServerThread) -> None:
    # The v1 messages are v1alpha's field for field, so v1alpha's classes encode them.
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol) for symbol in METHODS
    ]
    requests.append(reflection_pb2.ServerReflectionRequest(list_services=""))
    with grpc.insecure_channel(server.target) as channel:
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        responses = list(call(iter(requests), timeout=30))
    assert len(responses) == len(requests)
    for response, file_name in zip(responses, METHODS.values(), strict=False):
        assert response.WhichOneof("message_response") == "file_descriptor_response"
        names = [
            descriptor_pb2.FileDescriptorProto.FromString(data).name
            for data in response.file_descriptor_response.file_descriptor_proto
        ]
        assert file_name in names
    services = {s.name for s in responses[-1].list_services_response.service}
    assert "featurestore.v1.FeatureService" in services
    assert "grpc.reflection.v1.ServerReflection" in services
