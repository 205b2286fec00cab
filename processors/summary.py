"""What one Kafka partition's step did: a typed summary, and its row for Spark and Arrow.

A step returns a :class:`PartitionSummary`; where it crosses a process (the backfill's and the
executors' ``mapInArrow`` tasks send one row per partition to the driver) it travels as a row
of :data:`SUMMARY_SCHEMA` (``rows_by_view`` as JSON) and is read back with
:meth:`PartitionSummary.from_row`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pyarrow as pa

__all__ = ["SECONDS", "SUMMARY_DDL", "SUMMARY_SCHEMA", "PartitionSummary"]

SECONDS = ("decode_s", "machine_s", "state_s", "dead_letters_s", "postgres_s", "redis_s")
"""The parts of a partition's work that are timed, in seconds."""


@dataclass
class PartitionSummary:
    """Counts, timings and the hook view's rows of one partition's step."""

    partition: int
    records: int = 0
    skipped: int = 0
    rows: int = 0
    rows_by_view: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    duplicates: int = 0
    late: int = 0
    online_rows: int = 0
    state_bytes: int = 0
    state_tiles: int | None = None
    """Tiles the partition's states hold after the step, every view and stage (a level, not a
    count to sum over batches; None: not counted)."""
    state_open_events: int | None = None
    """Events of open tiles the partition's states hold after the step (likewise)."""
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SECONDS, 0.0))
    """Seconds spent in each part of the work (:data:`SECONDS`)."""
    hook_rows: bytes = b""
    """Arrow IPC of the hook view's new rows (empty without hooks)."""
    observed: str = ""
    """JSON for the metrics (:func:`processors.metrics.observations`; empty in a backfill)."""

    def row(self) -> dict[str, Any]:
        """The :data:`SUMMARY_SCHEMA` row."""
        row = asdict(self)
        row["rows_by_view"] = json.dumps(self.rows_by_view)
        row.update(row.pop("seconds"))
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PartitionSummary:
        """The summary a :data:`SUMMARY_SCHEMA` row (a Spark row's ``asDict()``) holds."""
        values = dict(row)
        values["rows_by_view"] = {
            str(k): int(v) for k, v in json.loads(values.get("rows_by_view") or "{}").items()
        }
        values["hook_rows"] = bytes(values.get("hook_rows") or b"")
        values["observed"] = values.get("observed") or ""
        values["seconds"] = {name: float(values.pop(name, 0.0) or 0.0) for name in SECONDS}
        return cls(**values)


SUMMARY_SCHEMA = pa.schema(
    [
        ("partition", pa.int32()),
        ("records", pa.int64()),
        ("skipped", pa.int64()),
        ("rows", pa.int64()),
        ("rows_by_view", pa.string()),
        ("dead_letters", pa.int64()),
        ("duplicates", pa.int64()),
        ("late", pa.int64()),
        ("online_rows", pa.int64()),
        ("state_bytes", pa.int64()),
        ("state_tiles", pa.int64()),
        ("state_open_events", pa.int64()),
        *((name, pa.float64()) for name in SECONDS),
        ("hook_rows", pa.binary()),
        ("observed", pa.string()),
    ]
)
"""One row per Kafka partition of a batch: :class:`PartitionSummary`'s fields, in order."""

_SPARK_TYPES = {
    pa.int32(): "int", pa.int64(): "long", pa.float64(): "double", pa.binary(): "binary",
    pa.string(): "string",
}  # fmt: skip
SUMMARY_DDL = ", ".join(f"{f.name} {_SPARK_TYPES[f.type]}" for f in SUMMARY_SCHEMA)
""":data:`SUMMARY_SCHEMA` in Spark's DDL."""
