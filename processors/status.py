"""The status file a running processor rewrites after each micro-batch.

``featurestore processors status`` reads it: progress (events/s, lag, last batch duration) and
where the time of the last batch went. Written atomically (temp file + rename), so a reader
never sees half a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from featurestore.atomic_file import write_atomically

__all__ = ["BatchStatus", "now_iso", "read_status", "write_status"]


@dataclass
class BatchStatus:
    """One micro-batch, and the totals so far."""

    batch_id: int
    finished_at: str
    """ISO time the batch's sinks finished."""
    records: int
    rows: int
    """Feature rows written, all views."""
    dead_letters: int
    duplicates: int
    late: int
    seconds: dict[str, float] = field(default_factory=dict)
    """Where the batch's time went: decode and state (summed over tasks), sinks (driver)."""
    lag: int | None = None
    """Records in the topic not processed yet (from Spark's last progress)."""
    batch_ms: int | None = None
    """Spark's whole duration of the last completed batch."""
    events_per_s: float | None = None
    """Spark's processed rows per second of the last completed batch."""
    spark_ms: dict[str, int] = field(default_factory=dict)
    """Spark's own time per part of the last completed batch (its progress ``durationMs``:
    latestOffset, walCommit, queryPlanning, addBatch = the read and hand-over, commitOffsets)."""
    rows_by_view: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    """Counts since this process started."""
    python_blocks: int | None = None
    """The process's allocated Python memory blocks when the file was written
    (``sys.getallocatedblocks``): against the resident memory over time, it tells a Python
    object leak (both grow) from the allocator's fragmentation (only the memory grows)."""
    state_tiles: int | None = None
    """Tiles the feature engine holds (one per entity, view and tile some window still reads),
    over the partitions this process steps, each as of its last batch: beside
    :attr:`python_blocks` it tells the windows filling (both grow for the longest view's reach,
    two hours for ``ohlcv_1h``, then level off) from a leak (the blocks grow alone). With the
    Spark engine the tiles are the executors' and the blocks the driver's."""
    state_open_events: int | None = None
    """Events of the open tiles the feature engine holds (deduplication and running rows),
    likewise: they grow with the rate, not with time."""


def now_iso() -> str:
    """The current time for status files."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def write_status(path: Path, status: BatchStatus, extra: dict[str, Any] | None = None) -> None:
    """Replace the status file (atomically: readers see the old or the new one)."""
    write_atomically(path, json.dumps({**asdict(status), **(extra or {})}, indent=1))


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status written, or None when there is none."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data
