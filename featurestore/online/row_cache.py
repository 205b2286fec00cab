"""Entity rows read from Redis, kept in memory while Redis says they are unchanged.

The read path's client-side cache: replies of ``HMGET key field...`` by field list and key, filled
from :class:`~featurestore.online.pipelined.PipelinedRedis` batches (``on_replies``) and emptied by
the invalidations Redis pushes for tracked keys (``on_invalidate``); both run in the order of the
connection's stream, so an entry is never newer than an invalidation that has been handled. Bounded:
past ``max_rows`` entries nothing new is kept (reads still work, uncached).

What the cache cannot see is time: a key expiring in Redis is invalidated only once Redis deletes
it (on access or by its expiry cycle). The reader therefore re-reads from Redis any cached row
that is past its view's TTL (see :mod:`featurestore.online.rows`): a key expires only
after every row in it has aged past its TTL, so a cached row that is still fresh is still stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RowCache"]

Row = list[Any]


class RowCache:
    """HMGET replies by field list and key; see the module's docstring."""

    def __init__(self, max_rows: int) -> None:
        """Keep at most ``max_rows`` rows."""
        self._max_rows = max_rows
        self._tables: dict[bytes, dict[bytes, Row]] = {}
        self._size = 0

    def __len__(self) -> int:
        """The number of rows kept."""
        return self._size

    def table(self, fields: bytes) -> dict[bytes, Row]:
        """The rows read with one field list (``fields``: any bytes naming the list), by key.

        Callers only read from it; :meth:`store` and :meth:`invalidate` change it.
        """
        table = self._tables.get(fields)
        if table is None:
            table = self._tables[fields] = {}
        return table

    def store(self, table: dict[bytes, Row], keys: Sequence[bytes], replies: Sequence[Any]) -> None:
        """Keep the replies of ``HMGET key ...`` for ``keys`` (error replies are not kept)."""
        for key, reply in zip(keys, replies, strict=True):
            if type(reply) is not list:
                continue
            if key not in table:
                if self._size >= self._max_rows:
                    continue
                self._size += 1
            table[key] = reply

    def invalidate(self, keys: list[bytes] | None) -> None:
        """Forget ``keys`` under every field list; ``None``: forget everything."""
        if keys is None:
            for table in self._tables.values():
                table.clear()
            self._size = 0
            return
        for table in self._tables.values():
            for key in keys:
                if table.pop(key, None) is not None:
                    self._size -= 1
