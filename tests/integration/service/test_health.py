"""Health says NOT_SERVING, with the reason, while Redis is away; calls get UNAVAILABLE; both
recover by themselves when Redis is back.

A Redis of its own (own data folder, free port), SIGKILLed and started again: the shared
stack's Redis is not touched. Only the Redis probe runs, so the other backends' state does not
matter here. Apart from it, a server over the shared stack, probing every backend, leaves no
connection open once it has stopped.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import feature_service_pb2_grpc
from featurestore._proto.v1 import types_pb2
from featurestore.config import GrpcSettings
from featurestore.config import Settings
from featurestore.online import StaticCatalog
from featurestore.online.testing import market_catalog
from featurestore.service.health import REASON_KEY
from featurestore.service.health import DependencyWatch
from featurestore.service.health import ReasonedHealthServicer
from featurestore.service.health import backend_probes
from featurestore.service.server import new_event_loop
from featurestore.service.testing import ServerThread
from featurestore.service.testing import finish_loop
from featurestore.stack import Stack
from featurestore.stack.process import wait_until
from tests.own_stack import own_stack
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.mostly_waits]

FEATURES = "featurestore.v1.FeatureService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Stack]:
    env = {
        "FEATURESTORE_REDIS__PORT": str(free_port()),
        "FEATURESTORE_GRPC__PORT": "0",
        "FEATURESTORE_METRICS__ENABLED": "false",
    }
    with own_stack(tmp_path / "stack", env, ["redis"]) as stack:
        yield stack


def _check(channel: grpc.Channel, service: str) -> tuple[int, str]:
    stub = health_pb2_grpc.HealthStub(channel)
    reply, call = stub.Check.with_call(health_pb2.HealthCheckRequest(service=service), timeout=5)
    reasons = dict(call.trailing_metadata() or ()).get(REASON_KEY, "")
    return reply.status, reasons.decode() if isinstance(reasons, bytes) else str(reasons)


def _read(channel: grpc.Channel) -> grpc.StatusCode:
    request = feature_service_pb2.GetOnlineFeaturesRequest()
    request.features.features.append("bars_1m:close")
    request.entities["symbol"].values.append(types_pb2.Value(string_value="IBM"))
    stub = feature_service_pb2_grpc.FeatureServiceStub(channel)  # type: ignore[no-untyped-call]
    try:
        stub.GetOnlineFeatures(request, timeout=5)
    except grpc.RpcError as exc:
        details = exc.details() or ""
        assert "Error" not in details and "<class" not in details, details
        return exc.code()
    return grpc.StatusCode.OK


def test_health_follows_redis_and_calls_recover_by_themselves(own_redis: Stack) -> None:
    settings: Settings = own_redis.settings
    catalog = market_catalog(f"fs_health_{uuid.uuid4().hex[:8]}")
    server = ServerThread(
        settings, catalog, probes={"redis": backend_probes(settings, timeout_s=1)["redis"]}
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            assert _check(channel, "") == (SERVING, "")
            assert _check(channel, FEATURES) == (SERVING, "")
            assert _read(channel) == grpc.StatusCode.OK

            pid = own_redis.redis.process.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda: _check(channel, FEATURES)[0] == NOT_SERVING, 15)
            _, reason = _check(channel, FEATURES)
            assert reason.startswith("redis: "), reason
            assert _check(channel, "")[0] == NOT_SERVING
            # The services that do not read Redis still serve.
            assert _check(channel, "featurestore.v1.DatasetService") == (SERVING, "")
            assert _read(channel) == grpc.StatusCode.UNAVAILABLE

            assert own_redis.up(["redis"]).started == ["redis"]
            assert wait_until(lambda: _check(channel, FEATURES) == (SERVING, ""), 15)
            assert _check(channel, "") == (SERVING, "")
            assert wait_until(lambda: _read(channel) == grpc.StatusCode.OK, 15)
    finally:
        server.stop()


def test_a_stopped_server_leaves_no_connection_open(
    stack: Settings, catalog: StaticCatalog
) -> None:
    """Every probe has run and a read has gone to Redis; stopping closes what they opened.

    An unclosed transport warns when the loop closes (the end of ``stop``) or when the garbage
    collector takes it, whichever comes first: both are inside the recording.
    """
    settings = stack.model_copy(update={"grpc": GrpcSettings(port=0)})
    gc.collect()  # what earlier tests left to the collector warns now, not in the recording
    server = ServerThread(settings, catalog)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            with grpc.insecure_channel(server.target) as channel:
                assert _check(channel, "")[0] == SERVING
                assert _read(channel) == grpc.StatusCode.OK
        finally:
            server.stop()
        del server
        gc.collect()
    leaks = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_a_watch_stopped_while_its_redis_probe_runs_leaves_no_connection_open(
    stack: Settings,
) -> None:
    """The watch of a stopping server is cancelled wherever its Redis probe is: connecting,
    waiting for PONG, or closing. Stopped 200 times at moments spread over its first 10 ms,
    each time on a loop of its own that is then closed as the server's is, no socket is left.

    Before the probe closed its client cancel-safely, about one stop in 25 left a connection
    open (redis-py closes a pool's connections in a ``gather`` that a cancel empties).
    """
    probes = {"redis": backend_probes(stack)["redis"]}

    async def start_then_stop(delay_s: float) -> None:
        watch = DependencyWatch(ReasonedHealthServicer(), probes, interval_s=0.0005)
        watch.start()
        await asyncio.sleep(delay_s)
        await watch.stop()

    gc.collect()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for i in range(200):
            loop = new_event_loop(stack.service.event_loop)
            try:
                loop.run_until_complete(start_then_stop((i % 50) / 5000))
                loop.run_until_complete(finish_loop())
            finally:
                loop.close()
        gc.collect()
    leaks = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert leaks == []
