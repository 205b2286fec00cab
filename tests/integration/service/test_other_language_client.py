"""A Go client (grpcurl, built from the Go module proxy) reaches the server from the same proto."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from tests.go_tools import go_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_grpcurl_with_the_proto_files_and_with_reflection(
    start_server: Callable[..., ServerThread], write_rows: Callable[[list[FeatureRow]], None]
) -> None:
    grpcurl = go_tool("grpcurl")
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol="IBM"), now, {"close": 151.25})])
    server = start_server()
    request = {
        "features": {"features": ["bars_1m:close", "bars_1m:open"]},
        "entities": {"symbol": {"values": [{"stringValue": "IBM"}, {"stringValue": "NONE"}]}},
    }
    method = "featurestore.v1.FeatureService/GetOnlineFeatures"
    from_proto = [
        grpcurl, "-plaintext", "-import-path", str(REPO / "proto"),
        "-proto", "featurestore/v1/feature_service.proto",
        "-d", json.dumps(request), server.target, method,
    ]  # fmt: skip
    reply = json.loads(
        subprocess.run(from_proto, check=True, capture_output=True, timeout=30).stdout
    )
    assert reply["featureNames"] == ["bars_1m:close", "bars_1m:open"]
    close, opened = reply["columns"]
    assert close["values"][0] == {"doubleValue": 151.25}
    assert close["statuses"] == ["FEATURE_STATUS_PRESENT", "FEATURE_STATUS_NOT_FOUND"]
    assert opened["statuses"] == ["FEATURE_STATUS_NULL_VALUE", "FEATURE_STATUS_NOT_FOUND"]
    assert close["eventTimestamps"][0] == now.strftime("%Y-%m-%dT%H:%M:%SZ")

    listed = subprocess.run(
        [grpcurl, "-plaintext", server.target, "list"], check=True, capture_output=True, timeout=30
    ).stdout.decode()
    for service in ("Feature", "Prediction", "Anomaly", "Dataset"):
        assert f"featurestore.v1.{service}Service" in listed.split()
    assert "grpc.health.v1.Health" in listed.split()

    bad = subprocess.run(
        [grpcurl, "-plaintext", "-d", '{"features": {"features": ["bars_1m:nope"]}, '
         '"entities": {"symbol": {"values": [{"stringValue": "IBM"}]}}}', server.target, method],
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    assert bad.returncode != 0
    assert b"NotFound" in bad.stderr
    assert b"bars_1m:nope" in bad.stderr
