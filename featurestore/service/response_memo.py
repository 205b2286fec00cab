"""Encoded GetOnlineFeatures responses, reused while every row they were built from is unchanged.

The row cache (:mod:`featurestore.online.row_cache`) already spares the read; what is left per
call is framing the same bytes again. A memo keeps, per request (by its wire bytes), the response
and the row objects it was built from. It answers only while

- every row is still the very object the row cache holds for its key (identity, checked in C with
  ``map(operator.is_, ...)``): a row that Redis invalidated is dropped from the cache and a new
  read stores a new object, so any write, delete, expiry or lost connection makes the memo miss;
- the clock is before ``valid_until``: the first moment at which a row it holds could pass its
  view's TTL, less a millisecond so that float rounding at the boundary is decided by the general
  computation, not the memo.

So the answer is the one the reader would have built from its row cache at that moment. Bounded by
the bytes of the responses kept (oldest dropped first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import is_
from typing import Any

__all__ = ["ResponseMemo"]

TTL_MARGIN_S = 1e-3
"""A memo stops answering this long before a row it holds could pass its TTL."""


@dataclass(slots=True)
class _Entry:
    table: dict[bytes, Any]
    keys: tuple[bytes, ...]
    rows: list[Any]
    response: bytes
    valid_until: float


class ResponseMemo:
    """Responses by request bytes; see the module's docstring."""

    def __init__(self, max_bytes: int) -> None:
        """Keep at most ``max_bytes`` of responses."""
        self._max_bytes = max_bytes
        self._entries: dict[bytes, _Entry] = {}
        self._bytes = 0

    def __len__(self) -> int:
        """The number of responses kept."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget every response (the definitions they were built under changed)."""
        self._entries.clear()
        self._bytes = 0

    def get(self, request: bytes, now: float) -> bytes | None:
        """The response kept for ``request`` if its rows are unchanged and fresh at ``now``."""
        entry = self._entries.get(request)
        if (
            entry is not None
            and now < entry.valid_until
            and all(map(is_, map(entry.table.get, entry.keys), entry.rows))
        ):
            return entry.response
        return None

    def put(
        self,
        request: bytes,
        table: dict[bytes, Any],
        keys: tuple[bytes, ...],
        rows: Sequence[Any],
        response: bytes,
        valid_until: float,
    ) -> None:
        """Keep ``response``, built from ``rows`` (the row cache's rows of ``keys`` in ``table``).

        ``valid_until``: the earliest time a row could pass its view's TTL (the margin is applied
        here).
        """
        size = len(request) + len(response)
        if size > self._max_bytes:
            return
        entries = self._entries
        old = entries.pop(request, None)
        if old is not None:
            self._bytes -= len(request) + len(old.response)
        while entries and self._bytes + size > self._max_bytes:
            oldest = next(iter(entries))
            self._bytes -= len(oldest) + len(entries.pop(oldest).response)
        entries[request] = _Entry(table, keys, list(rows), response, valid_until - TTL_MARGIN_S)
        self._bytes += size
