"""How a wrapped server stream ends, and what the server says of it.

A stream its client leaves is one INFO line and a CANCELLED count; a failure of the server's own
still logs its traceback; a stream that a stopping server cuts short is not the client's doing.
Real grpc.aio server and channel on loopback, a hand-made service of bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from featurestore.service.telemetry import RpcTelemetry
from featurestore.service.wrapping import MethodWrapper
from featurestore.service.wrapping import WrappingRegistrar
from featurestore.telemetry import Telemetry

SERVICE = "pkg.Svc"
ABANDONED = "call abandoned by the client"


async def _count(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for i in range(3):
        yield b"%d" % i


async def _fail(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    raise RuntimeError("the server's own bug")


async def _wait(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.sleep(60)
    yield b"never"


def _stream(behavior: Callable[..., Any]) -> grpc.RpcMethodHandler:
    return grpc.unary_stream_rpc_method_handler(behavior)


async def _served(
    check: Callable[[grpc.aio.Channel, MethodWrapper, grpc.aio.Server], Awaitable[None]],
    telemetry: Telemetry,
) -> None:
    server = grpc.aio.server()
    wrapper = MethodWrapper(RpcTelemetry(telemetry))
    WrappingRegistrar(server, wrapper).add_service(
        SERVICE, {"Count": _stream(_count), "Fail": _stream(_fail), "Wait": _stream(_wait)}
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await check(channel, wrapper, server)
    finally:
        await server.stop(0)


def _counted(telemetry: Telemetry, method: str, code: str) -> float:
    assert telemetry.registry is not None
    value = telemetry.registry.get_sample_value(
        "featurestore_grpc_server_handling_seconds_count",
        {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code},
    )
    return value or 0.0


async def _until(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Wait for ``check`` to hold (the caller asserts it after: a timeout fails there).

    Generous: with the unit suite on every core, the server's side of a cancel took over 2 s.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def _said(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if ABANDONED in r.getMessage()]


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry.prometheus()


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    """Every test reads the wrapper's INFO lines."""
    caplog.set_level(logging.INFO)


async def _first_of_wait(channel: grpc.aio.Channel) -> Any:
    """A call of ``Wait`` once its first response has come."""
    call = channel.unary_stream(f"/{SERVICE}/Wait")(b"")
    assert await call.read() == b"first"
    return call


def test_a_stream_the_client_cancels_is_one_info_line_and_counted_cancelled(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(channel: grpc.aio.Channel, wrapper: MethodWrapper, server: Any) -> None:
        call = await _first_of_wait(channel)
        call.cancel()
        await _until(lambda: _counted(telemetry, "Wait", "CANCELLED") == 1)

    asyncio.run(_served(check, telemetry))
    assert _counted(telemetry, "Wait", "CANCELLED") == 1
    [line] = _said(caplog)
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith(f"/{SERVICE}/Wait: {ABANDONED} after 1 responses")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_failure_of_the_server_still_logs_its_traceback(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(channel: grpc.aio.Channel, wrapper: MethodWrapper, server: Any) -> None:
        call = channel.unary_stream(f"/{SERVICE}/Fail")(b"")
        assert await call.read() == b"first"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() is grpc.StatusCode.INTERNAL
        assert info.value.details() == "internal error"

    asyncio.run(_served(check, telemetry))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage() == f"/{SERVICE}/Fail failed unexpectedly"
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)
    assert not _said(caplog)
    assert _counted(telemetry, "Fail", "INTERNAL") == 1


def test_a_stream_that_ends_says_nothing(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(channel: grpc.aio.Channel, wrapper: MethodWrapper, server: Any) -> None:
        responses = [r async for r in channel.unary_stream(f"/{SERVICE}/Count")(b"")]
        assert responses == [b"0", b"1", b"2"]

    asyncio.run(_served(check, telemetry))
    assert _counted(telemetry, "Count", "OK") == 1
    assert not caplog.records


def test_a_stream_a_stopping_server_cuts_short_is_not_said_to_be_abandoned(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(channel: grpc.aio.Channel, wrapper: MethodWrapper, server: Any) -> None:
        _call = await _first_of_wait(channel)  # held open while the server stops
        wrapper.drain()
        await server.stop(0)
        await _until(lambda: _counted(telemetry, "Wait", "CANCELLED") == 1)

    asyncio.run(_served(check, telemetry))
    assert not _said(caplog)
