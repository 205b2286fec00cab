"""A minimal asyncio Redis client for the read path: prebuilt RESP in, hiredis-parsed replies out.

redis-py's asyncio client costs ~100-200 µs of Python per call (pool checkout, command packing,
one ``await`` per reply, retry and timeout wrappers). The online read path needs none of that: it
sends one prebuilt batch of commands per request and waits for that many replies. Here every
coroutine shares one connection; Redis answers in order, so each batch waits on one future that
the protocol resolves when its last reply has been parsed (hiredis). Concurrent requests are
pipelined on the socket for free.

Failures: a lost connection fails every pending batch with :class:`BackendUnavailableError` and
the next call reconnects; a batch with no answer within ``timeout_s`` closes the connection the
same way (one watchdog timer per connection, not one per call). A caller that is cancelled (its
deadline passed) leaves its batch in the queue: its replies are read and dropped, so the others
stay in step. Error replies are returned as :class:`hiredis.ReplyError` values for the caller to
judge.

With ``tracking=True`` the connection speaks RESP3 with ``CLIENT TRACKING ON`` (Redis' server-
assisted client-side caching): Redis remembers the keys this connection read and pushes an
``invalidate`` message on this same connection when one of them changes (written, deleted,
expired, evicted). Pushes and replies arrive in the order Redis produced them, and both are
handled in that order: a batch's ``on_replies`` callback runs as soon as its last reply is parsed,
before anything that follows it on the socket. So a cache filled from ``on_replies`` and emptied by
the ``on_invalidate`` callback never keeps a value that Redis has since invalidated. A lost
connection loses the tracking too: ``on_invalidate(None)`` (forget everything).

With a ``tracer`` each batch is a client span, a child of the caller's current span (the RPC's);
without one, ``execute`` starts none and costs nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import hiredis
from opentelemetry import trace

from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError

if TYPE_CHECKING:
    from featurestore.config import RedisSettings

__all__ = [
    "Invalidate",
    "InvalidationRelay",
    "PipelinedRedis",
    "RedisAccess",
    "command_name",
    "encode_command",
    "redis_span",
]

logger = logging.getLogger(__name__)

Invalidate = Callable[[list[bytes] | None], None]
"""Told the keys Redis invalidated, or None: forget every key."""
RepliesHook = Callable[[list[Any]], None]


class InvalidationRelay:
    """Hands the keys a client's connections report invalidated to the callback set last.

    Connections are made with the relay before a reader sets its callback, and keep it when the
    callback changes.
    """

    def __init__(self) -> None:
        """No callback yet: invalidations are dropped."""
        self.callback: Invalidate | None = None

    def __call__(self, keys: list[bytes] | None) -> None:
        """Pass ``keys`` (``None``: forget everything) to the callback, when one is set."""
        if self.callback is not None:
            self.callback(keys)


def command_name(payload: bytes) -> str:
    """The name of the first command of a RESP ``payload`` (``HMGET``), for its span."""
    # *<argc>\r\n$<len>\r\n<name>\r\n...
    header_end = payload.find(b"\r\n", payload.find(b"\r\n") + 2)
    name_end = payload.find(b"\r\n", header_end + 2)
    if header_end < 0 or name_end < 0:
        return "UNKNOWN"
    return payload[header_end + 2 : name_end].decode("ascii", "replace").upper()


def redis_span(
    tracer: trace.Tracer, operation: str, count: int, host: str, port: int, db: int
) -> AbstractContextManager[trace.Span]:
    """The client span of ``count`` Redis commands (``operation`` the first's name)."""
    attributes: dict[str, str | int] = {
        "db.system.name": "redis",
        "db.operation.name": operation if count == 1 else f"PIPELINE {operation}",
        "db.operation.batch.size": count,
        "db.namespace": str(db),
        "server.address": host,
        "server.port": port,
    }
    return tracer.start_as_current_span(
        f"redis {operation}", kind=trace.SpanKind.CLIENT, attributes=attributes
    )


def encode_command(*args: bytes | str) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class _Batch:
    __slots__ = ("future", "on_replies", "remaining", "replies", "sent_at")

    def __init__(
        self,
        future: asyncio.Future[list[Any]],
        count: int,
        sent_at: float,
        on_replies: RepliesHook | None,
    ) -> None:
        self.future = future
        self.remaining = count
        self.replies: list[Any] = []
        self.sent_at = sent_at
        self.on_replies = on_replies


@dataclass(frozen=True)
class RedisAccess:
    """How a connection authenticates and encrypts: the ACL user and the TLS context."""

    username: str | None = None
    """The ACL user; None: Redis' ``default`` user."""
    password: str | None = field(default=None, repr=False)
    """Sent with AUTH on each new connection; None: no AUTH."""
    ssl: ssl.SSLContext | None = None
    """TLS (verifying the server's certificate against the host name); None: plain TCP."""

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> RedisAccess:
        """The access ``settings`` describe."""
        password = settings.password.get_secret_value() if settings.password else None
        return cls(settings.username, password, settings.ssl_context())


class _Protocol(asyncio.Protocol):
    """One connection: writes batches, matches replies to them in order."""

    def __init__(self, timeout_s: float, on_invalidate: Invalidate | None) -> None:
        self._timeout_s = timeout_s
        self._on_invalidate = on_invalidate
        self._reader = hiredis.Reader()
        self._pending: deque[_Batch] = deque()
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._lost = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(
        self, payload: bytes, count: int, on_replies: RepliesHook | None = None
    ) -> asyncio.Future[list[Any]]:
        loop = asyncio.get_running_loop()
        batch = _Batch(loop.create_future(), count, loop.time(), on_replies)
        if self.closed:
            batch.future.set_exception(BackendUnavailableError("online store (Redis): closed"))
            return batch.future
        self._pending.append(batch)
        assert self._transport is not None
        self._transport.write(payload)
        if self._watchdog is None:
            self._watchdog = loop.call_at(batch.sent_at + self._timeout_s, self._check)
        return batch.future

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        pending = self._pending
        push = hiredis.PushNotification
        try:
            while True:
                reply = reader.gets()
                if reply is False:
                    return
                if type(reply) is push:
                    self._pushed(reply)
                    continue
                if not pending:
                    raise hiredis.ProtocolError("a reply to no command")
                head = pending[0]
                head.replies.append(reply)
                head.remaining -= 1
                if head.remaining == 0:
                    pending.popleft()
                    if head.on_replies is not None:
                        head.on_replies(head.replies)
                    if not head.future.done():
                        head.future.set_result(head.replies)
        except hiredis.ProtocolError as exc:
            self._fail(f"a malformed reply ({exc})")

    def _pushed(self, message: list[Any]) -> None:
        if self._on_invalidate is not None and message and message[0] == b"invalidate":
            keys = message[1] if len(message) > 1 else None
            self._on_invalidate(keys if isinstance(keys, list) else None)

    def _check(self) -> None:
        self._watchdog = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        due = self._pending[0].sent_at + self._timeout_s
        if due <= loop.time():
            self._fail(f"no reply within {self._timeout_s:g} s")
        else:
            self._watchdog = loop.call_at(due, self._check)

    def _fail(self, why: str) -> None:
        if not self.closed and self._on_invalidate is not None:
            self._on_invalidate(None)  # tracking ends with the connection
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._pending:
            batch = self._pending.popleft()
            if not batch.future.done():
                batch.future.set_exception(
                    BackendUnavailableError(f"online store (Redis) unavailable: {why}")
                )
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection lost" if exc is None else f"connection lost ({exc})")
        if not self._lost.done():
            self._lost.set_result(None)

    def close(self) -> None:
        self._fail("client closed")

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait until the transport has closed; past ``timeout_s``, drop it.

        A TLS close sends close_notify and waits for the server's: a loop that ends before that
        leaves the socket open (asyncio's) until it is collected.
        """
        if self._transport is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._lost)
        except TimeoutError:
            self._transport.abort()

    def stop_tracking(self) -> None:
        if self._on_invalidate is not None:
            self._on_invalidate(None)
        self._on_invalidate = None


class PipelinedRedis:
    """One shared, lazily (re)connected Redis connection for batches of prebuilt commands."""

    def __init__(
        self,
        host: str,
        port: int,
        db: int = 0,
        *,
        timeout_s: float = 1.0,
        tracking: bool = False,
        tracer: trace.Tracer | None = None,
        access: RedisAccess | None = None,
    ) -> None:
        """``access``: the ACL user and TLS of the server (None: plain, no AUTH)."""
        self._host = host
        self._port = port
        self._db = db
        self._access = access or RedisAccess()
        self._timeout_s = timeout_s
        self.tracking = tracking
        """Whether connections track the keys they read (see the module's docstring)."""
        self._invalidated = InvalidationRelay()
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None
        self._tracer = tracer
        """A client span per batch when set (a child of the RPC's span); None: no span."""

    def on_invalidate(self, callback: Invalidate) -> None:
        """Call ``callback`` with the keys Redis invalidates (``None``: forget everything)."""
        self._invalidated.callback = callback

    async def execute(
        self, payload: bytes, count: int, on_replies: RepliesHook | None = None
    ) -> list[Any]:
        """Send ``payload`` (``count`` commands in RESP) and return their ``count`` replies.

        ``on_replies`` runs with the replies in the order of the connection's stream: before any
        invalidation that Redis sent after them is handled.
        """
        if self._tracer is not None:
            return await self._traced(self._tracer, payload, count, on_replies)
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        return await protocol.send(payload, count, on_replies)

    async def _traced(
        self, tracer: trace.Tracer, payload: bytes, count: int, on_replies: RepliesHook | None
    ) -> list[Any]:
        with redis_span(tracer, command_name(payload), count, self._host, self._port, self._db):
            protocol = self._protocol
            if protocol is None or protocol.closed:
                protocol = await self._connected()
            return await protocol.send(payload, count, on_replies)

    async def _connected(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(
                        self._timeout_s, self._invalidated if self.tracking else None
                    ),
                    self._host,
                    self._port,
                    ssl=self._access.ssl,
                    server_hostname=self._host if self._access.ssl is not None else None,
                )
                try:
                    await self._handshake(protocol)
                except BaseException:  # refused, timed out or cancelled (aclose): no socket left
                    protocol.close()
                    raise
        except ssl.SSLError as exc:
            # A certificate the CA did not sign (or TLS against a plain port): not transient.
            raise ConfigurationError(
                f"online store (Redis) at {self._host}:{self._port}: TLS failed: "
                f"{exc.reason or exc}"
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise BackendUnavailableError(
                f"online store (Redis) unavailable at {self._host}:{self._port}:"
                f" {str(exc) or 'no answer in time'}"
            ) from exc
        self._protocol = protocol
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        """AUTH, tracking and SELECT, as configured, on a new connection."""
        if self._access.password is not None:
            await self._auth(protocol)
        if self.tracking:
            await self._track(protocol)
        if self._db:
            (reply,) = await protocol.send(encode_command("SELECT", str(self._db)), 1)
            if reply != b"OK":
                raise BackendUnavailableError(f"online store (Redis) refused db: {reply}")

    async def _auth(self, protocol: _Protocol) -> None:
        """AUTH as the ACL user; a refusal is a :class:`ConfigurationError` naming the user."""
        access = self._access
        assert access.password is not None
        args = [access.username] if access.username else []
        (reply,) = await protocol.send(encode_command("AUTH", *args, access.password), 1)
        if reply != b"OK":
            user = access.username or "default"
            raise ConfigurationError(
                f"online store (Redis) at {self._host}:{self._port} refused user {user!r}: {reply}"
            )

    async def _track(self, protocol: _Protocol) -> None:
        hello, tracking = await protocol.send(
            encode_command("HELLO", "3") + encode_command("CLIENT", "TRACKING", "ON"), 2
        )
        if isinstance(hello, hiredis.ReplyError) or tracking != b"OK":
            # Before Redis 6 (no RESP3 or tracking): read on every call, never cache.
            logger.warning(
                "Redis refused client-side caching (%s, %s): reads uncached", hello, tracking
            )
            self.tracking = False
            protocol.stop_tracking()

    async def aclose(self) -> None:
        """Close the connection; pending batches fail with BackendUnavailableError."""
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()
            await protocol.wait_closed(self._timeout_s)
