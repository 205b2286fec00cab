"""A stream rides through a server restart: it gives up only after its reconnect window."""

from __future__ import annotations

import pytest
from featurestore_client import RetryPolicy
from featurestore_client import UnavailableError
from featurestore_client._anomalies import AnomalyStream
from featurestore_client._proto.v1 import anomaly_service_pb2

from tests.unit.clients.fake_calls import StreamCall
from tests.unit.clients.fake_calls import Unavailable

REFUSED = Unavailable("failed to connect to all addresses; Connection refused")
"""What a call raises while nothing listens on the server's port."""


class _Restart:
    """A server that is down until ``back_at`` seconds on the stream's clock, then serves."""

    def __init__(self, back_at: float) -> None:
        self.now = 0.0
        self.back_at = back_at
        self.calls = 0

    def open(self, request: anomaly_service_pb2.StreamAnomaliesRequest) -> StreamCall:
        self.calls += 1
        if self.now < self.back_at:
            return StreamCall([], REFUSED)
        anomaly = anomaly_service_pb2.Anomaly(anomaly_id="a1")
        response = anomaly_service_pb2.StreamAnomaliesResponse(anomaly=anomaly, resume_token="t1")
        return StreamCall([response])

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _stream(server: _Restart, policy: RetryPolicy) -> AnomalyStream:
    request = anomaly_service_pb2.StreamAnomaliesRequest()
    return AnomalyStream(server.open, request, policy, sleep=server.sleep, clock=lambda: server.now)


def test_a_restart_within_the_window_loses_nothing() -> None:
    server = _Restart(back_at=20.0)
    (got,) = list(_stream(server, RetryPolicy()))
    assert got.anomaly_id == "a1"
    assert server.calls > RetryPolicy().max_attempts  # more attempts than alone it would allow


def test_past_the_window_the_stream_raises_the_servers_error() -> None:
    server = _Restart(back_at=3600.0)
    with pytest.raises(UnavailableError, match="Connection refused"):
        list(_stream(server, RetryPolicy()))
    assert 30.0 <= server.now < 33.0  # gave up once the window passed (backoff at most 2 s)


def test_a_window_of_zero_leaves_max_attempts_alone() -> None:
    server = _Restart(back_at=3600.0)
    with pytest.raises(UnavailableError):
        list(_stream(server, RetryPolicy(max_attempts=3, stream_reconnect_window_s=0)))
    assert server.calls == 3


def test_the_window_is_checked() -> None:
    with pytest.raises(ValueError, match="stream_reconnect_window_s cannot be negative"):
        RetryPolicy(stream_reconnect_window_s=-1)
