"""The Go load generator (bench/loadgen, built by make setup) against its own echo and Python.

Request bytes arrive as sent, replies are counted undecoded, both load shapes keep their promise,
and a failing call names the server's status.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import NoReturn

import grpc
import pytest

from bench.go_load import Load
from bench.go_load import drive
from bench.go_load import go_echo


@pytest.fixture
def python_server() -> Iterator[tuple[int, list[bytes]]]:
    """A gRPC server answering /t.S/Echo with 300 bytes and /t.S/Missing with NOT_FOUND."""
    received: list[bytes] = []

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        received.append(request)
        return b"\x02" * 300

    def missing(request: bytes, context: grpc.ServicerContext) -> NoReturn:
        context.abort(grpc.StatusCode.NOT_FOUND, "no model named m")
        raise AssertionError("abort raises")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Missing": grpc.unary_unary_rpc_method_handler(missing),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.S", handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, received
    server.stop(grace=None)


def test_closed_loop_against_its_own_echo() -> None:
    with go_echo() as echo:
        result = drive(
            f"127.0.0.1:{echo.port}",
            "/bench.Echo/Call",
            b"\x0a\x01x",
            Load(concurrency=4),
            seconds=0.3,
            metadata={"x-response-size": "2048"},
        )
    assert result.errors == 0 and result.calls > 30
    assert result.response_bytes == 2048
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.cpu_s > 0


def test_open_loop_starts_calls_on_schedule() -> None:
    with go_echo() as echo:
        result = drive(
            f"127.0.0.1:{echo.port}", "/bench.Echo/Call", b"", Load(rate=200), seconds=0.5
        )
    assert result.calls == 100 and result.errors == 0  # rate x duration, whatever the latency
    assert 150 < result.qps <= 205


def test_a_python_server_gets_the_bytes_as_sent(python_server: tuple[int, list[bytes]]) -> None:
    port, received = python_server
    request = bytes(range(256)) * 3
    result = drive(
        f"127.0.0.1:{port}", "/t.S/Echo", request, Load(concurrency=2), seconds=0.2, warmup_calls=3
    )
    assert result.calls > 0 and result.response_bytes == 300
    assert set(received) == {request}
    assert len(received) == result.calls + 3


def test_a_failing_method_names_the_servers_status(python_server: tuple[int, list[bytes]]) -> None:
    port, _ = python_server
    with pytest.raises(RuntimeError, match=r"NotFound.*no model named m"):
        drive(f"127.0.0.1:{port}", "/t.S/Missing", b"", Load(), seconds=0.2)
