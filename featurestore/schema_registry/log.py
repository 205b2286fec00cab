"""Where the registry's records persist: the interface, and an in-memory log.

The registry is event-sourced: :meth:`RecordLog.read_all` replays every record at start-up and
:meth:`RecordLog.append` makes a write durable before it is applied in memory. Positions count
the log's offsets: the position after a record is the offset the next one will take. The Kafka log
(:mod:`featurestore.schema_registry.kafka_log`) is the real one; :class:`MemoryRecordLog` keeps
the records in a list, for unit tests and for trying the API without Kafka.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from typing import Protocol

from featurestore.schema_registry.records import LogRecord
from featurestore.schema_registry.records import decode_record
from featurestore.schema_registry.records import encode_record

__all__ = ["MemoryRecordLog", "RecordLog"]


class RecordLog(Protocol):
    """An append-only log of registry records."""

    def read_all(self) -> Iterator[LogRecord]:
        """Every record from the beginning to the current end, in order."""
        ...

    def append(self, records: Sequence[LogRecord]) -> int:
        """Write records durably and in order; the position after the last, once acknowledged.

        Raises:
            StoreError: They could not all be written.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryRecordLog:
    """A :class:`RecordLog` in a list; records round-trip through their Kafka encoding."""

    def __init__(self) -> None:
        """Start with an empty log."""
        self.messages: list[tuple[bytes, bytes | None]] = []
        """The encoded (key, value) pairs, as they would be in Kafka."""

    def read_all(self) -> Iterator[LogRecord]:
        """Every record appended so far."""
        for key, value in list(self.messages):
            record = decode_record(key, value)
            if record is not None:
                yield record

    def append(self, records: Sequence[LogRecord]) -> int:
        """Keep the records."""
        self.messages.extend(encode_record(r) for r in records)
        return len(self.messages)

    def close(self) -> None:
        """Nothing to release."""
