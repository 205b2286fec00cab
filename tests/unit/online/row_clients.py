"""A :class:`~featurestore.online.rows.RowClient` without Redis, for the read paths' unit tests.

The read paths (:class:`~featurestore.online.rows.RowReader` and what stands on it) are given
this fake through the store's own interface: each HMGET of a batch is answered by a function of
its key and the field names it asks for, as a Redis holding those rows would answer it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from featurestore.online import FeatureRow
from featurestore.online import StaticCatalog
from featurestore.online.pipelined import Invalidate
from featurestore.online.redis import write_args
from featurestore.online.rows import RowBatch
from featurestore.online.rows import StoreHook

__all__ = ["FakeRowClient", "hmget_fields", "written_hashes"]

Answer = Callable[[bytes, list[bytes]], Any]
"""The reply to ``HMGET key field...``, from the key and the field names."""


class FakeRowClient:
    """A RowClient that tracks nothing and answers every HMGET with ``answer(key, fields)``."""

    tracking = False

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.read: list[bytes] = []
        """Every key an HMGET was sent for, in order."""

    def on_invalidate(self, callback: Invalidate) -> None:
        """No invalidations: nothing is tracked."""

    async def hmget(
        self,
        batch: RowBatch,
        rows: Sequence[int] | None = None,
        on_replies: StoreHook | None = None,
    ) -> list[Any]:
        fields = hmget_fields(batch.tail)
        keys = batch.keys if rows is None else [batch.keys[i] for i in rows]
        self.read += keys
        return [self.answer(key, fields) for key in keys]

    async def aclose(self) -> None:
        """Nothing to close."""


def written_hashes(rows: Iterable[FeatureRow], catalog: StaticCatalog) -> FakeRowClient:
    """A client whose Redis holds the hashes the store's own ``write_args`` write for ``rows``."""
    hashes: dict[bytes, dict[bytes, bytes]] = {}
    for row in rows:
        key, args = write_args(row, catalog)
        fields = hashes.setdefault(key, {})
        pairs = [a if isinstance(a, bytes) else a.encode() for a in args[:2] + args[5:]]
        fields.update(zip(pairs[::2], pairs[1::2], strict=True))
    return FakeRowClient(lambda key, fields: [hashes.get(key, {}).get(f) for f in fields])


def hmget_fields(tail: bytes) -> list[bytes]:
    """The field names of an HMGET's RESP tail (``$<length>\\r\\n<bytes>\\r\\n`` each)."""
    out = []
    at = 0
    while at < len(tail):
        end = tail.index(b"\r\n", at)
        size = int(tail[at + 1 : end])
        out.append(tail[end + 2 : end + 2 + size])
        at = end + 2 + size + 2
    return out
