"""A stream whose connection goes silent fails UNAVAILABLE (the SDK's keepalive pings).

A TCP proxy between the SDK and the server is frozen (SIGSTOP) while a quiet StreamAnomalies
call is open: the connection neither carries frames nor resets, as when a NAT or a load
balancer forgets it or a host vanishes. The channel's pings go unanswered and the call fails
instead of waiting for ever. The SDK's defaults ping after 30 s; the test after 10 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import FeatureStoreClientError
from featurestore_client import UnavailableError

from featurestore.config import TopicSettings
from featurestore.service.testing import ServerThread
from featurestore.stack.process import wait_until
from featurestore.telemetry import Telemetry

pytestmark = [pytest.mark.integration, pytest.mark.mostly_waits]

_PROXY = """
import asyncio, sys

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()

async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]))
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


@pytest.fixture
def proxy_to() -> Iterator[Callable[[int], tuple[subprocess.Popen[str], int]]]:
    """``proxy_to(port)``: a TCP proxy process to ``127.0.0.1:port``, and the port it listens on."""
    started: list[subprocess.Popen[str]] = []

    def start(port: int) -> tuple[subprocess.Popen[str], int]:
        proxy = subprocess.Popen(
            [sys.executable, "-c", _PROXY, str(port)], stdout=subprocess.PIPE, text=True
        )
        started.append(proxy)
        assert proxy.stdout is not None
        return proxy, int(proxy.stdout.readline())

    yield start
    for proxy in started:
        os.kill(proxy.pid, signal.SIGCONT)
        proxy.kill()
        proxy.wait(10)
        if proxy.stdout is not None:
            proxy.stdout.close()


def test_a_stream_on_a_connection_gone_silent_fails_unavailable(
    new_topic: Callable[..., str],
    start_server: Callable[..., ServerThread],
    proxy_to: Callable[[int], tuple[subprocess.Popen[str], int]],
) -> None:
    server = start_server(topics=TopicSettings(anomalies=new_topic("anomalies")))
    proxy, port = proxy_to(int(server.target.rsplit(":", 1)[1]))
    # Every 10 s (the server's floor). A server on gRPC's default policy (5 min between pings
    # on a call that sends nothing, 2 strikes allowed) ends the stream with GOAWAY "too many
    # pings" at the third, ~30 s in: the channel's first ping, a BDP probe sent when the health
    # watch's first answer arrives, is free; each later one is a strike (checked with
    # GRPC_TRACE=http2_ping: without the server's option the test fails at 30 s). The freeze at
    # 36 s comes after that, and before the fourth ping (40 s), which times out at 42 s.
    fast = [  # the rest of the SDK's keepalive options (KEEPALIVE_OPTIONS) stay
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 2_000),
        ("grpc.http2.ping_timeout_ms", 2_000),
    ]
    ended: list[BaseException | None] = []
    with FeatureStoreClient(f"127.0.0.1:{port}", options=fast) as client:
        stream = client.stream_anomalies(resume=False)  # no anomaly ever comes: a quiet stream

        def read() -> None:
            try:
                for _ in stream:
                    pass
                ended.append(None)
            except FeatureStoreClientError as exc:
                ended.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(36.0)
        assert reader.is_alive(), f"the quiet stream ended while the proxy ran: {ended}"
        os.kill(proxy.pid, signal.SIGSTOP)
        reader.join(60.0)  # without keepalives it waits for ever
        assert not reader.is_alive(), "the stream still waits on the silent connection"
        stream.close()
    assert len(ended) == 1 and isinstance(ended[0], UnavailableError), ended


def _in_flight(telemetry: Telemetry) -> float:
    assert telemetry.registry is not None
    value = telemetry.registry.get_sample_value("featurestore_grpc_server_in_flight_requests")
    return -1.0 if value is None else value


def test_the_server_drops_a_subscriber_gone_silent(
    new_topic: Callable[..., str],
    start_server: Callable[..., ServerThread],
    proxy_to: Callable[[int], tuple[subprocess.Popen[str], int]],
) -> None:
    """The client's own pings (30 s, the SDK's default) come too late to end it first."""
    telemetry = Telemetry.prometheus()
    try:
        server = start_server(
            topics=TopicSettings(anomalies=new_topic("anomalies")), telemetry=telemetry,
            keepalive_s=2.0, keepalive_timeout_s=2.0,
        )  # fmt: skip
        proxy, port = proxy_to(int(server.target.rsplit(":", 1)[1]))
        with FeatureStoreClient(f"127.0.0.1:{port}") as client:
            stream = client.stream_anomalies(resume=False)

            def drain() -> None:  # the client's own pings end it later: UNAVAILABLE then
                with contextlib.suppress(FeatureStoreClientError):
                    for _ in stream:
                        pass

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            assert wait_until(lambda: _in_flight(telemetry) == 1, timeout=30), "no open stream"
            time.sleep(5.0)  # pinged, answered: still open (unanswered, dropped within 4 s)
            assert _in_flight(telemetry) == 1
            os.kill(proxy.pid, signal.SIGSTOP)
            # 2 s without a frame, then 2 s for an answer: without pings it stays open, and
            # with gRPC's ping timeout left at 20 s it is dropped too late.
            dropped = wait_until(lambda: _in_flight(telemetry) == 0, timeout=15)
            os.kill(proxy.pid, signal.SIGCONT)
            stream.close()
        assert dropped, "the server still holds the silent subscriber's stream"
    finally:
        telemetry.close()
