"""The read path's shared Redis connection against the stack's Redis: ordering, failures."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable
from collections.abc import Iterator

import hiredis
import psutil
import pytest
import redis

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.online.pipelined import PipelinedRedis
from featurestore.online.pipelined import RedisAccess
from featurestore.online.pipelined import encode_command
from featurestore.service.server import new_event_loop
from featurestore.stack import Stack
from tests.own_stack import own_stack
from tests.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(stack: Settings) -> Iterator[list[bytes]]:
    """Fifty string keys of this test's own, each holding its own index."""
    prefix = f"fs_pipe_{uuid.uuid4().hex[:10]}:"
    names = [f"{prefix}{i}".encode() for i in range(50)]
    client = redis.Redis(
        host=stack.redis.host,
        port=stack.redis.port,
        db=stack.redis.db,
        **stack.redis.client_kwargs(),
    )
    with client:
        client.mset({name: str(i) for i, name in enumerate(names)})
        yield names
        client.delete(*names)


def _client(stack: Settings) -> PipelinedRedis:
    return PipelinedRedis(
        stack.redis.host,
        stack.redis.port,
        stack.redis.db,
        access=RedisAccess.from_settings(stack.redis),
    )


def test_concurrent_batches_get_their_own_replies(stack: Settings, keys: list[bytes]) -> None:
    async def main() -> list[list[object]]:
        client = _client(stack)
        try:
            batches = [
                b"".join(encode_command("GET", key) for key in keys[i : i + 5])
                for i in range(0, len(keys), 5)
            ]
            return list(await asyncio.gather(*(client.execute(batch, 5) for batch in batches)))
        finally:
            await client.aclose()

    replies = asyncio.run(main())
    assert [int(v) for batch in replies for v in batch] == list(range(50))  # type: ignore[call-overload]


def test_a_cancelled_caller_leaves_the_others_in_step(stack: Settings, keys: list[bytes]) -> None:
    async def main() -> list[object]:
        client = _client(stack)
        try:
            await client.execute(encode_command("PING"), 1)  # connected
            first = asyncio.ensure_future(client.execute(encode_command("GET", keys[1]), 1))
            await asyncio.sleep(0)  # sent
            first.cancel()
            return await client.execute(encode_command("GET", keys[2]), 1)
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [b"2"]


def test_error_replies_come_back_as_values(stack: Settings, keys: list[bytes]) -> None:
    async def main() -> list[object]:
        client = _client(stack)
        try:
            payload = encode_command("HMGET", keys[0], "f") + encode_command("GET", keys[3])
            return await client.execute(payload, 2)
        finally:
            await client.aclose()

    wrong_type, value = asyncio.run(main())
    assert isinstance(wrong_type, hiredis.ReplyError)
    assert "WRONGTYPE" in str(wrong_type)
    assert value == b"3"


def test_nobody_listening_is_unavailable() -> None:
    port = free_port()  # nothing listens there

    async def main() -> None:
        client = PipelinedRedis("127.0.0.1", port, timeout_s=1.0)
        await client.execute(encode_command("PING"), 1)

    with pytest.raises(BackendUnavailableError, match="unavailable"):
        asyncio.run(main())


def test_a_silent_server_times_out_and_fails_every_pending_batch() -> None:
    async def main() -> list[BaseException | list[object]]:
        accepted: list[asyncio.StreamWriter] = []  # kept, never answered; closed at the end
        silent = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        client = PipelinedRedis("127.0.0.1", port, timeout_s=0.3)
        try:
            calls = [client.execute(encode_command("PING"), 1) for _ in range(3)]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        finally:
            await client.aclose()
            for writer in accepted:
                writer.close()
            silent.close()
            await silent.wait_closed()

    results = asyncio.run(main())
    assert all(isinstance(r, BackendUnavailableError) for r in results)
    assert "no reply within 0.3 s" in str(results[0])


def test_a_connection_closed_during_its_handshake_leaves_no_socket() -> None:
    """Closing the client while HELLO/CLIENT TRACKING waits (a server stopping) closes the socket.

    Its own timeout is far away, so only the close can end the connection in time.
    """

    async def main() -> list[bytes]:
        accepted = asyncio.Event()
        ends: list[bytes] = []  # what the accepted connection read before the client closed it

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set()
            ends.append(await reader.read())  # never answers; read() ends at the client's close
            writer.close()

        silent = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        client = PipelinedRedis("127.0.0.1", port, timeout_s=30.0, tracking=True)
        call = asyncio.ensure_future(client.execute(encode_command("PING"), 1))
        try:
            await asyncio.wait_for(accepted.wait(), 5)
            await asyncio.sleep(0.05)  # HELLO sent, its reply awaited
            await client.aclose()
            call.cancel()
            await asyncio.wait_for(_until(lambda: bool(ends)), 5)
        finally:
            call.cancel()
            silent.close()
            await silent.wait_closed()
        return ends

    ends = asyncio.run(main())
    assert len(ends) == 1 and ends[0].startswith(b"*2\r\n$5\r\nHELLO"), ends


async def _until(done: Callable[[], bool]) -> None:
    while not done():
        await asyncio.sleep(0.02)


def test_reconnects_after_the_connection_is_killed(stack: Settings, keys: list[bytes]) -> None:
    admin = redis.Redis(
        host=stack.redis.host,
        port=stack.redis.port,
        db=stack.redis.db,
        **stack.redis.client_kwargs(),
    )

    async def main() -> tuple[object, object, list[object]]:
        client = _client(stack)
        try:
            (before,) = await client.execute(encode_command("CLIENT", "ID"), 1)
            admin.client_kill_filter(_id=before)  # only this connection
            for _ in range(100):  # the loop notices the closed socket
                await asyncio.sleep(0.01)
                try:
                    (after,) = await client.execute(encode_command("CLIENT", "ID"), 1)
                    break
                except BackendUnavailableError:
                    continue
            return before, after, await client.execute(encode_command("GET", keys[4]), 1)
        finally:
            await client.aclose()

    with admin:
        before, after, value = asyncio.run(main())
    assert before != after
    assert value == [b"4"]


def test_selects_its_database(stack: Settings) -> None:
    db = 7 if stack.redis.db != 7 else 8
    key = f"fs_pipe_db_{uuid.uuid4().hex[:10]}"
    admin = redis.Redis(
        host=stack.redis.host, port=stack.redis.port, db=db, **stack.redis.client_kwargs()
    )

    async def main() -> list[object]:
        client = PipelinedRedis(
            stack.redis.host, stack.redis.port, db, access=RedisAccess.from_settings(stack.redis)
        )
        try:
            return await client.execute(encode_command("GET", key), 1)
        finally:
            await client.aclose()

    with admin:
        admin.set(key, "in-db")
        try:
            assert asyncio.run(main()) == [b"in-db"]
        finally:
            admin.delete(key)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Redis of this module's own on a TLS port with the ACL user, as the secured stack's."""
    env = {
        "FEATURESTORE_SECURITY__ENABLED": "true",
        "FEATURESTORE_KAFKA__PASSWORD": f"kafka-{uuid.uuid4().hex}",
        "FEATURESTORE_POSTGRES__PASSWORD": f"pg-{uuid.uuid4().hex}",
        "FEATURESTORE_REDIS__PASSWORD": f"redis-{uuid.uuid4().hex}",
        "FEATURESTORE_REDIS__PORT": str(free_port()),
    }
    with own_stack(tmp_path_factory.mktemp("tls-redis"), env, ["redis"]) as stack:
        yield stack


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_tls_connection_closed_as_its_loop_ends_leaves_no_socket(
    tls_redis: Stack, loop: str
) -> None:
    """A TLS close is an exchange (close_notify both ways) that the loop must still run.

    Closed just before ``asyncio.run`` ends (as a command's or a test's store is), the connection
    was left half-closed when the loop closed, its socket open until collected. Here Redis is
    stopped (SIGSTOP, a server too busy to answer in time) once it has answered: aclose waits
    for the exchange as long as the client's timeout, then drops the connection.
    """
    cfg = tls_redis.settings.redis
    pid = tls_redis.redis.process.pid()
    assert pid is not None

    async def ping_then_close_with_redis_stopped() -> list[object]:
        client = PipelinedRedis(
            cfg.host, cfg.port, cfg.db, timeout_s=0.5, access=RedisAccess.from_settings(cfg)
        )
        try:
            return await client.execute(encode_command("PING"), 1)
        finally:
            os.kill(pid, signal.SIGSTOP)
            await client.aclose()

    try:
        with asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
            assert runner.run(ping_then_close_with_redis_stopped()) == [b"PONG"]
        left = psutil.Process().net_connections("tcp")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [c for c in left if c.raddr and c.raddr.port == cfg.port] == []
