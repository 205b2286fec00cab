"""What every event source yields: raw records with candidate event fields, not yet trusted.

A source (a vendor file, a CSV, a Parquet file, the synthetic market, a metric generator) turns
its rows into :class:`SourceRecord` values: the candidate fields of one kind of event (a trade,
a quote, a metric), converted as far as the source can, plus the original bytes and where they
came from. Validation (:mod:`featurestore.ingest.validate`) decides whether a record becomes an
event or goes to the dead-letter topic, so that nothing is dropped on the way.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Literal
from typing import Protocol

__all__ = ["EventSource", "RecordKind", "SourceRecord", "merge_by_event_time"]

RecordKind = Literal["trade", "quote", "metric"]
"""The kind of event a record is a candidate for; it decides validation and topic."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One row of a source, before validation."""

    source: str
    """The file name (or generator name) it came from: lineage and dead-letter header."""
    line: int
    """1-based line (text files) or row (Parquet, generator) number."""
    fields: Mapping[str, object]
    """Candidate fields of the event of :attr:`kind` (for a trade ``symbol``, ``price``,
    ``size``, ``event_time``, ``exchange``, ``conditions``, ``trade_id``, ``currency``);
    possibly missing or of the wrong type."""
    raw: bytes | None = None
    """The original record bytes; ``None`` where the row has no text form (then :meth:`raw_bytes`
    renders the fields as JSON)."""
    reject: str | None = field(default=None)
    """A reason the source itself already rejects the row for (``code: detail``)."""
    kind: RecordKind = "trade"
    """The kind of event the record is a candidate for."""

    def raw_bytes(self) -> bytes:
        """Return the record as it was read, for the dead-letter topic."""
        if self.raw is not None:
            return self.raw
        return json.dumps(dict(self.fields), default=str, sort_keys=True).encode()


class EventSource(Protocol):
    """An iterable of source records in event-time order (as far as the source is ordered)."""

    name: str
    """A short human name for messages (usually the file name)."""
    kind: RecordKind
    """The kind of every record it yields."""

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield the records of the source."""
        ...


def merge_by_event_time(sources: Iterable[Iterable[SourceRecord]]) -> Iterator[SourceRecord]:
    """Interleave several time-sorted sources into one stream ordered by event time.

    A record without a usable ``event_time`` keeps the time of the record before it in its own
    source, so rejects stay where they were read instead of sinking to one end.
    """

    def keyed(
        index: int, records: Iterable[SourceRecord]
    ) -> Iterator[tuple[float, int, int, SourceRecord]]:
        last = float("-inf")
        for seq, record in enumerate(records):
            value = record.fields.get("event_time")
            if isinstance(value, datetime) and value.tzinfo is not None:
                last = value.timestamp()
            yield last, index, seq, record

    for _, _, _, record in heapq.merge(*(keyed(i, s) for i, s in enumerate(sources))):
        yield record
