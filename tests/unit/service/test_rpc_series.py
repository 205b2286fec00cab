"""The server's RPC duration series exist from its start, so that a first error counts."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy
from prometheus_client import CollectorRegistry

from featurestore.service import Telemetry
from featurestore.service.testing import ServerThread
from featurestore.telemetry import SERVER_ERROR_CODES

COUNT = "featurestore_grpc_server_handling_seconds_count"


def _counts(registry: CollectorRegistry, method: str) -> dict[str, float]:
    return {
        sample.labels["grpc_code"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == COUNT and sample.labels["grpc_method"] == method
    }


def test_ok_and_every_server_error_code_are_exported_at_zero_before_any_call(
    start_server: Callable[..., ServerThread],
) -> None:
    # rate() and increase() start from a series' first sample: a series born with its first
    # error (value 1) never shows that error, and one failed call in ten would not alert.
    telemetry = Telemetry.prometheus()
    assert telemetry.registry is not None
    server = start_server(telemetry=telemetry)
    for method in ("GetOnlineFeatures", "Predict", "StreamAnomalies", "ExportTrainingDataset"):
        assert _counts(telemetry.registry, method) == dict.fromkeys(("OK", *SERVER_ERROR_CODES), 0)
    with (
        FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(NotFoundError),
    ):
        client.get_online_features(["nope:x"], entities={"symbol": ["A"]})
    # A client's error is its own series, born with the call: it is not a server error. The
    # status reaches the client as the handler unwinds: give the record a moment.
    deadline = time.monotonic() + 2
    while "NOT_FOUND" not in (counts := _counts(telemetry.registry, "GetOnlineFeatures")):
        assert time.monotonic() < deadline, counts
        time.sleep(0.02)
    assert counts.pop("NOT_FOUND") == 1
    assert counts == dict.fromkeys(("OK", *SERVER_ERROR_CODES), 0)
