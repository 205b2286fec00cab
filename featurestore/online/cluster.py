"""The read path's client of a Redis Cluster: keys routed by slot, one round trip per node.

The cluster's slot map (``CLUSTER SLOTS``, asked of any node it knows) says which master serves
each of the 16384 hash slots. A batch is split by the master of each key's slot, each master's part
sent at once on that master's one shared :class:`~featurestore.online.pipelined.PipelinedRedis`
connection (tracking keys when the client does, so invalidations come from the node that holds the
key), and the replies put back in the batch's order. Feast's keys carry no hash tag, so one
request's entities spread over the masters: a request costs one pipelined round trip per master it
touches, concurrently.

Redirections are followed: ``MOVED`` (the slot has another master: the map is corrected at once
and asked again in the background) and ``ASK`` (a slot being migrated: ``ASKING`` then the command,
on the node named), up to :data:`MAX_REDIRECTS` times. ``CLUSTERDOWN``, ``TRYAGAIN`` and a node
that does not answer fail the call with :class:`BackendUnavailableError` (UNAVAILABLE) and have
the map asked again, so a failover costs the calls made before the replica is promoted, and
nothing else.

Cached rows and failovers: a row is cached only while the connection it was read on is open and
tracks it. A connection that is lost (a master killed) forgets every cached row, and so do a
``MOVED`` and any change of the slot map, which is asked again every ``refresh_s`` while rows are
cached: a master replaced while its connection stays open (a manual failover, a network partition)
stops serving cached rows within that time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import hiredis
from opentelemetry import trace

from featurestore.errors import BackendUnavailableError
from featurestore.online.pipelined import Invalidate
from featurestore.online.pipelined import InvalidationRelay
from featurestore.online.pipelined import PipelinedRedis
from featurestore.online.pipelined import RedisAccess
from featurestore.online.pipelined import encode_command
from featurestore.online.rows import PASSING_STATES
from featurestore.online.rows import RowBatch
from featurestore.online.rows import StoreHook

__all__ = ["MAX_REDIRECTS", "ClusterRedis"]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_SLOTS = 16384
_UNAVAILABLE = tuple(state.encode() for state in PASSING_STATES)
_CLUSTER_SLOTS = encode_command("CLUSTER", "SLOTS")

Address = tuple[str, int]


class ClusterRedis:
    """A :class:`~featurestore.online.rows.RowClient` of a Redis Cluster's masters."""

    def __init__(
        self,
        startup: Sequence[Address],
        *,
        timeout_s: float = 1.0,
        tracking: bool = False,
        tracer: trace.Tracer | None = None,
        refresh_s: float = 1.0,
        access: RedisAccess | None = None,
    ) -> None:
        """A client of the cluster reached through ``startup``.

        ``startup``: nodes to ask for the slot map first (any node of the cluster will do);
        ``access``: the ACL user and TLS of every node.
        """
        if not startup:
            raise ValueError("a Redis Cluster client needs at least one node to start from")
        self._startup = list(startup)
        self._timeout_s = timeout_s
        self._access = access
        self.tracking = tracking
        """Whether connections track the keys they read; False once a node refused it."""
        self._tracer = tracer
        self._refresh_s = refresh_s
        self._nodes: dict[Address, PipelinedRedis] = {}
        self._slots: list[Address] | None = None
        """The slot map calls use; None: ask again before the next call."""
        self._installed: list[Address] | None = None
        """The last slot map asked of the cluster, to tell when it changes."""
        self._refreshing: asyncio.Task[list[Address]] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._invalidated = InvalidationRelay()
        self._closed = False

    def on_invalidate(self, callback: Invalidate) -> None:
        """Call ``callback`` with the keys any node invalidates (``None``: forget everything)."""
        self._invalidated.callback = callback

    def node(self, address: Address) -> PipelinedRedis:
        """The shared connection to the node at ``address`` (made on first use)."""
        node = self._nodes.get(address)
        if node is None:
            if self._closed:  # a call still in flight when the client closed: no new socket
                raise BackendUnavailableError("online store (Redis Cluster): the client is closed")
            node = self._nodes[address] = PipelinedRedis(
                address[0], address[1], timeout_s=self._timeout_s,
                tracking=self.tracking, tracer=self._tracer, access=self._access,
            )  # fmt: skip
            node.on_invalidate(self._invalidated)
        return node

    async def slot_map(self) -> list[Address]:
        """The master of each slot, asked of the cluster when not known."""
        slots = self._slots
        if slots is None:
            slots = await self.refresh()
        return slots

    async def refresh(self) -> list[Address]:
        """Ask the cluster for its slot map again (one request at a time)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._refreshing)

    async def _refresh(self) -> list[Address]:
        candidates = list(dict.fromkeys([*self._startup, *self._nodes]))
        problems = []
        for address in candidates:
            try:
                (reply,) = await self.node(address).execute(_CLUSTER_SLOTS, 1)
            except BackendUnavailableError as exc:
                problems.append(str(exc))
                continue
            if isinstance(reply, hiredis.ReplyError) or not isinstance(reply, list):
                problems.append(f"{address[0]}:{address[1]} answered CLUSTER SLOTS with {reply}")
                continue
            slots = _slot_map(reply, address[0])
            if slots is None:
                problems.append(f"{address[0]}:{address[1]}: not every slot is served")
                continue
            self._install(slots)
            self._watch()
            return slots
        raise BackendUnavailableError(
            "online store (Redis Cluster) unavailable: no node gave a slot map serving every "
            f"slot ({'; '.join(problems[:3])})"
        )

    def _install(self, slots: list[Address]) -> None:
        old = self._installed
        self._slots = self._installed = slots
        if old is not None and old != slots:
            # A key may now live on a master whose connection never read it: nothing would tell
            # us when it changes there.
            logger.info("Redis Cluster slot map changed: cached rows forgotten")
            self._invalidated(None)
        if self.tracking and any(not n.tracking for n in self._nodes.values()):
            self.tracking = False

    def _watch(self) -> None:
        if self._watcher is None and self.tracking and not self._closed:
            self._watcher = asyncio.ensure_future(self._watch_slots())

    async def _watch_slots(self) -> None:
        """While rows are cached, ask for the slot map every ``refresh_s``."""
        while not self._closed:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except BackendUnavailableError as exc:
                self._slots = None
                self._invalidated(None)
                logger.warning("%s", exc)

    async def hmget(
        self,
        batch: RowBatch,
        rows: Sequence[int] | None = None,
        on_replies: StoreHook | None = None,
    ) -> list[Any]:
        """See :meth:`featurestore.online.rows.RowClient.hmget`."""
        slots = self._slots or await self.slot_map()
        wanted = range(len(batch.keys)) if rows is None else rows
        groups: dict[Address, list[int]] = {}
        batch_slots = batch.slots
        for i in wanted:
            address = slots[batch_slots[i]]
            group = groups.get(address)
            if group is None:
                groups[address] = [i]
            else:
                group.append(i)
        try:
            if len(groups) == 1:
                ((address, indices),) = groups.items()
                parts = [await self._send(address, batch, indices, on_replies)]
            else:
                parts = await asyncio.gather(
                    *(self._send(a, batch, ix, on_replies) for a, ix in groups.items())
                )
        except BackendUnavailableError:
            self._stale()
            raise
        replies: dict[int, Any] = {}
        redirected: list[tuple[int, bytes]] = []
        for indices, part in zip(groups.values(), parts, strict=True):
            for i, reply in zip(indices, part, strict=True):
                if type(reply) is hiredis.ReplyError:
                    message = str(reply).encode()
                    if message.startswith((b"MOVED ", b"ASK ")):
                        redirected.append((i, message))
                        continue
                    if message.startswith(_UNAVAILABLE):
                        self._stale()
                        raise BackendUnavailableError(
                            f"online store (Redis Cluster) unavailable: {reply}"
                        )
                replies[i] = reply
        if redirected:
            await self._redirect(batch, redirected, replies, on_replies)
        return [replies[i] for i in wanted]

    async def _send(
        self, address: Address, batch: RowBatch, indices: list[int], on_replies: StoreHook | None
    ) -> list[Any]:
        keys = [batch.keys[i] for i in indices]
        node = self.node(address)
        hook = None
        if on_replies is not None:

            def hook(replies: list[Any]) -> None:
                if node.tracking:  # never cache what no invalidation would cover
                    on_replies(keys, replies)

        whole = (
            len(indices) == len(batch.keys) and indices[0] == 0 and indices[-1] == len(indices) - 1
        )
        payload = batch.command if whole else batch.payload(indices)
        try:
            return await node.execute(payload, len(indices), hook)
        finally:
            if not node.tracking and self.tracking:
                logger.warning("a Redis Cluster node refused client tracking: reads uncached")
                self.tracking = False

    async def _redirect(
        self,
        batch: RowBatch,
        redirected: list[tuple[int, bytes]],
        replies: dict[int, Any],
        on_replies: StoreHook | None,
    ) -> None:
        """Follow MOVED and ASK, one command at a time (redirections are rare and short)."""
        for i, message in redirected:
            for _ in range(MAX_REDIRECTS):
                kind, slot, target = message.split()[:3]
                host, _, port = target.decode().rpartition(":")
                address = (host, int(port))
                command = batch.payload([i])
                keys = [batch.keys[i]]
                if kind == b"MOVED":
                    if self._slots is not None:
                        self._slots = [*self._slots]
                        self._slots[int(slot)] = address
                    # The slot has another master: what was cached from the old one may never
                    # be invalidated.
                    self._invalidated(None)
                    self._stale(refresh_now=True)
                    hook = None if on_replies is None else (lambda r, k=keys: on_replies(k, r))
                    (reply,) = await self.node(address).execute(command, 1, hook)
                else:  # ASK: this one command, on that node, after ASKING; nothing cached
                    _, reply = await self.node(address).execute(
                        encode_command("ASKING") + command, 2
                    )
                if type(reply) is hiredis.ReplyError and str(reply).startswith(("MOVED ", "ASK ")):
                    message = str(reply).encode()
                    continue
                replies[i] = reply
                break
            else:
                raise BackendUnavailableError(
                    f"online store (Redis Cluster) unavailable: more than {MAX_REDIRECTS} "
                    f"redirections for one key ({message.decode()})"
                )

    def _stale(self, *, refresh_now: bool = False) -> None:
        """The slot map may be wrong: ask again (in the background, or on the next call)."""
        if refresh_now and not self._closed:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.ensure_future(self._refresh())
                self._refreshing.add_done_callback(_ignore_failure)
        else:
            self._slots = None

    async def aclose(self) -> None:
        """Close every node's connection and stop watching the slot map."""
        self._closed = True
        tasks = [t for t in (self._watcher, self._refreshing) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for node in self._nodes.values():
            await node.aclose()
        self._nodes.clear()


def _ignore_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed background refresh is retried by the next call


def _slot_map(reply: list[Any], asked_host: str) -> list[Address] | None:
    """``CLUSTER SLOTS`` as the master of each slot; None if a slot has none."""
    slots: list[Address | None] = [None] * _SLOTS
    for entry in reply:
        first, last, master = entry[0], entry[1], entry[2]
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        if host in ("", "?"):  # the node does not know its own address: the one we asked
            host = asked_host
        address = (host, int(master[1]))
        slots[first : last + 1] = [address] * (last - first + 1)
    if any(s is None for s in slots):
        return None
    return slots  # type: ignore[return-value]  # no None left
