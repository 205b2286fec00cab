"""What a micro-batch (or a backfill) did, summed over its partitions, for logs and status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pandas as pd
import pyarrow as pa

from processors.summary import PartitionSummary
from processors.tables import from_ipc

__all__ = ["COUNTS", "BatchReport"]

COUNTS = (
    "records", "skipped", "rows", "dead_letters", "duplicates", "late", "online_rows",
    "state_bytes",
)  # fmt: skip
"""The counters of a partition's summary, summed by :meth:`BatchReport.of`."""

_PARTS = {
    "decode_s": "decode (tasks)",
    "machine_s": "feature engine (tasks)",
    "state_s": "state load/save (tasks)",
    "dead_letters_s": "dead letters (tasks)",
    "postgres_s": "postgres rows + commit (tasks)",
    "redis_s": "redis (tasks)",
}


@dataclass
class BatchReport:
    """Counts and where the time went; the ``(tasks)`` parts are summed over parallel tasks."""

    records: int = 0
    """Records applied (a replayed batch's records are skipped, not counted here)."""
    skipped: int = 0
    rows: int = 0
    """Feature rows written, all views."""
    dead_letters: int = 0
    duplicates: int = 0
    late: int = 0
    online_rows: int = 0
    state_bytes: int = 0
    """Size of the partition states stored by the batch."""
    partitions: int = 0
    rows_by_view: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    hook_rows: list[pa.Table] = field(default_factory=list, repr=False)
    """The batch's new rows of the hook view (when the job returns them, for the hooks)."""
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    freshness_s: dict[str, list[float]] = field(default_factory=dict, repr=False)
    """Per view: Redis write time - event time of each entity row written."""
    kafka_freshness_s: list[float] = field(default_factory=list, repr=False)
    """Per partition: Redis write time - Kafka timestamp of its oldest record."""

    @classmethod
    def of(cls, summaries: Sequence[PartitionSummary], wall_s: float) -> BatchReport:
        """Sum the partitions' summaries."""
        report = cls(partitions=len(summaries), seconds={"partitions (wall)": wall_s})
        for summary in summaries:
            for name in COUNTS:
                setattr(report, name, getattr(report, name) + int(getattr(summary, name)))
            for key, label in _PARTS.items():
                report.seconds[label] = report.seconds.get(label, 0.0) + summary.seconds[key]
            for view, n in summary.rows_by_view.items():
                report.rows_by_view[view] = report.rows_by_view.get(view, 0) + n
            if summary.hook_rows:
                report.hook_rows.append(from_ipc(summary.hook_rows))
            report._observe(json.loads(summary.observed or "{}"))
        return report

    def _observe(self, observed: Mapping[str, Any]) -> None:
        """Gather a partition's :func:`processors.metrics.observations`."""
        for reason, n in observed.get("dead_letters_by_reason", {}).items():
            self.dead_letters_by_reason[reason] = self.dead_letters_by_reason.get(reason, 0) + n
        written_at = observed.get("written_at")
        if written_at is None:
            return
        for view, times in observed.get("event_s", {}).items():
            self.freshness_s.setdefault(view, []).extend(written_at - t for t in times)
        oldest = observed.get("oldest_kafka_s")
        if oldest is not None:
            self.kafka_freshness_s.append(written_at - oldest)

    def hook_frame(self) -> pd.DataFrame | None:
        """The hook view's new rows as one pandas frame (offline column names), or None."""
        if not self.hook_rows:
            return None
        return pa.concat_tables(self.hook_rows).to_pandas()
