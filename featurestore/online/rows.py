"""Entity rows read from Redis: one HMGET per key, one pipelined round trip per node, cached.

The read path of the online store below any decoding. A :class:`RowBatch` is the prebuilt RESP of
``HMGET key field...`` for one field list over many keys (with each key's hash slot, for a
cluster); a :class:`RowClient` sends it: :class:`SingleRedis` on one shared connection to one
server, :class:`~featurestore.online.cluster.ClusterRedis` split by the node that serves each key's
slot. :class:`RowReader` puts the client-side cache in front (:class:`RowCache`, kept true by
the invalidations Redis pushes on each connection that read a key): rows Redis has not invalidated
come from memory, the others are read in one batch.

A cached row is only as good as the invalidations behind it, and time invalidates nothing: a key
expiring in Redis is only reported once Redis deletes it. Callers therefore re-read
(:meth:`RowReader.reread`) a cached row they find past its view's TTL.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import MutableMapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from redis.crc import key_slot

from featurestore.errors import BackendUnavailableError
from featurestore.errors import FeatureStoreError
from featurestore.online.pipelined import Invalidate
from featurestore.online.pipelined import PipelinedRedis
from featurestore.online.pipelined import encode_command
from featurestore.online.row_cache import RowCache

__all__ = [
    "PASSING_STATES",
    "RowBatch",
    "RowClient",
    "RowReader",
    "SingleRedis",
    "StoreHook",
    "read_failure",
]

PASSING_STATES = ("LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")
"""Error replies of a Redis that is starting, busy or failing over: a later call may succeed
(:class:`~featurestore.errors.BackendUnavailableError`, not a failure of the request)."""


def read_failure(reply: object) -> FeatureStoreError:
    """The store's error for an error reply to a read: a passing state is UNAVAILABLE."""
    text = str(reply)
    if text.startswith(PASSING_STATES):
        return BackendUnavailableError(f"online store (Redis) unavailable: {text}")
    return FeatureStoreError(f"online store (Redis) failed while reading: {text}")


StoreHook = Callable[[Sequence[bytes], list[Any]], None]
"""Told the replies of some keys of a batch, in the order of their connection's stream."""


def _bulk(raw: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


@dataclass(frozen=True, slots=True)
class RowBatch:
    """``HMGET key field...`` of one field list over ``keys``, in RESP, ready to send."""

    head: bytes
    """RESP of ``HMGET`` up to the key."""
    tail: bytes
    """RESP of the fields after the key: names the field list (the row cache's table)."""
    keys: tuple[bytes, ...]
    bulks: tuple[bytes, ...]
    """The keys as RESP bulk strings."""
    command: bytes
    """Every key's HMGET, joined."""
    slots: tuple[int, ...]
    """Each key's hash slot (Redis Cluster)."""

    @classmethod
    def of(cls, fields: Sequence[bytes], keys: Sequence[bytes]) -> RowBatch:
        """The batch reading ``fields`` of every key of ``keys``."""
        tail = encode_command(*fields).partition(b"\r\n")[2]
        head = b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2)
        bulks = tuple(map(_bulk, keys))
        command = b"".join([part for bulk in bulks for part in (head, bulk, tail)])
        return cls(head, tail, tuple(keys), bulks, command, tuple(map(key_slot, keys)))

    def payload(self, rows: Sequence[int]) -> bytes:
        """The HMGETs of the keys at ``rows``."""
        head, tail, bulks = self.head, self.tail, self.bulks
        return b"".join([part for i in rows for part in (head, bulks[i], tail)])


class RowClient(Protocol):
    """Sends row batches to Redis: one server, or a cluster."""

    @property
    def tracking(self) -> bool:
        """Whether the connections track the keys they read (and push invalidations)."""
        ...

    def on_invalidate(self, callback: Invalidate) -> None:
        """Call ``callback`` with the keys Redis invalidates (``None``: forget everything)."""
        ...

    async def hmget(
        self,
        batch: RowBatch,
        rows: Sequence[int] | None = None,
        on_replies: StoreHook | None = None,
    ) -> list[Any]:
        """The replies of the batch's HMGETs (of ``rows`` only, when given), in their order.

        ``on_replies`` runs with each connection's keys and replies before that connection's
        next message (an invalidation) is handled. Raises BackendUnavailableError.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


class SingleRedis:
    """:class:`RowClient` of one Redis server: every batch on one shared connection."""

    def __init__(self, connection: PipelinedRedis) -> None:
        """Send every batch on ``connection``."""
        self.connection = connection

    @property
    def tracking(self) -> bool:
        """Whether the connection tracks keys (False once Redis refused it)."""
        return self.connection.tracking

    def on_invalidate(self, callback: Invalidate) -> None:
        """See :meth:`RowClient.on_invalidate`."""
        self.connection.on_invalidate(callback)

    async def hmget(
        self,
        batch: RowBatch,
        rows: Sequence[int] | None = None,
        on_replies: StoreHook | None = None,
    ) -> list[Any]:
        """See :meth:`RowClient.hmget`."""
        keys: Sequence[bytes]
        if rows is None:
            payload, keys, count = batch.command, batch.keys, len(batch.keys)
        else:
            payload, keys, count = batch.payload(rows), [batch.keys[i] for i in rows], len(rows)
        hook = None if on_replies is None else (lambda replies: on_replies(keys, replies))
        return await self.connection.execute(payload, count, hook)

    async def aclose(self) -> None:
        """See :meth:`RowClient.aclose`."""
        await self.connection.aclose()


class RowReader:
    """Reads row batches through the row cache (when the client tracks keys)."""

    def __init__(
        self,
        client: RowClient,
        cache: RowCache | None = None,
        *,
        counts: MutableMapping[str, int] | None = None,
    ) -> None:
        """``counts``: where cache hits and misses are counted (``hit``, ``miss``)."""
        self.client = client
        self.cache = cache
        """The row cache (None: every read goes to Redis)."""
        self._counts = counts if counts is not None else {"hit": 0, "miss": 0}
        if cache is not None:
            client.on_invalidate(cache.invalidate)

    @property
    def has_cache(self) -> bool:
        """Whether a row cache was given (it serves only while :attr:`caching`)."""
        return self.cache is not None

    @property
    def caching(self) -> bool:
        """Whether rows are served from memory (a cache, and connections that track keys)."""
        return self.cache is not None and self.client.tracking

    def table(self, batch: RowBatch) -> dict[bytes, Any]:
        """The cached rows of the batch's field list, by key (read only; empty without cache)."""
        return self.cache.table(batch.tail) if self.cache is not None else {}

    def cached(self, batch: RowBatch) -> list[Any] | None:
        """Every key's reply when the cache holds them all (no await: the hot path), else None."""
        cache = self.cache
        if cache is None or not self.client.tracking:
            return None
        replies = list(map(cache.table(batch.tail).get, batch.keys))
        if None in replies:
            return None
        self._counts["hit"] += len(replies)
        return replies

    async def read(self, batch: RowBatch) -> tuple[list[Any], Sequence[int]]:
        """Every key's HMGET reply, and the rows that came from the cache."""
        cache = self.cache
        if cache is None or not self.client.tracking:
            return await self.client.hmget(batch), ()
        table = cache.table(batch.tail)
        replies = list(map(table.get, batch.keys))
        missing = replies.count(None)
        counts = self._counts
        counts["hit"] += len(replies) - missing
        if not missing:
            return replies, range(len(replies))
        counts["miss"] += missing
        rows = [i for i, reply in enumerate(replies) if reply is None]
        await self.reread(batch, replies, rows)
        read = set(rows)
        return replies, [i for i in range(len(replies)) if i not in read]

    async def reread(self, batch: RowBatch, replies: list[Any], rows: Sequence[int]) -> None:
        """Read ``rows`` from Redis into ``replies`` (and the cache)."""
        cache = self.cache
        hook = None
        if cache is not None and self.client.tracking:
            table = cache.table(batch.tail)

            def hook(keys: Sequence[bytes], fetched: list[Any]) -> None:
                cache.store(table, keys, fetched)

        fetched = await self.client.hmget(batch, rows, hook)
        for i, reply in zip(rows, fetched, strict=True):
            replies[i] = reply

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
