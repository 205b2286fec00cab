"""What happens after a batch is stored, the same for both engines: report, hooks, metrics, status.

An engine (Spark's micro-batch, :mod:`processors.spark.stream`, or the Kafka consumer,
:mod:`processors.kafka_engine`) runs each partition's step and hands the partitions' summary
rows to :meth:`BatchRecorder.finish`: the batch's report is logged, the hooks get its new rows
of the hook view, the metrics and totals are updated and the status file
(``featurestore processors status``) is rewritten. The engine's own figures (lag, batch
duration, events/s, and Spark's time per part) go in :attr:`BatchRecorder.progress`.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd

from processors.features import StateCounts
from processors.metrics import ProcessorMetrics
from processors.report import COUNTS
from processors.report import BatchReport
from processors.status import BatchStatus
from processors.status import now_iso
from processors.status import write_status
from processors.summary import PartitionSummary

__all__ = ["BatchRecorder", "EngineProgress", "RowsHook"]

RowsHook = Callable[[pd.DataFrame], None]
"""Called with a batch's new rows of the hook view (offline column names) once stored."""

logger = logging.getLogger(__name__)

_LOG_EVERY_S = 1.0
REPORTS_KEPT = 1_000
"""The latest batch reports a recorder keeps (~2 minutes of the Kafka engine's batches at
5,000 events/s; the Spark engine's benchmark reads its few large ones): a processor runs for
weeks at ~10 batches a second. The totals count every batch; a kept report holds no freshness
samples (they went to the metrics)."""
"""A batch is logged at INFO at most this often (the Kafka engine's batches come every few ms),
and whenever it sent dead letters; the others at DEBUG."""


@dataclass
class EngineProgress:
    """The engine's last figures, for the status file (updated from any thread)."""

    lag: int | None = None
    """Records between what was read and the topic's end."""
    batch_ms: int | None = None
    """The whole duration of the last completed batch."""
    events_per_s: float | None = None
    """Records per second of the last completed batch."""
    spark_ms: dict[str, int] = field(default_factory=dict)
    """Spark's own time per part of its last batch (empty for the Kafka engine)."""


class BatchRecorder:
    """Reports, hooks, metrics, totals and the status file of one running processor."""

    def __init__(
        self,
        status_path: Path,
        extra: Mapping[str, Any],
        *,
        metrics: ProcessorMetrics | None = None,
        hooks: Sequence[RowsHook] = (),
    ) -> None:
        """Status to ``status_path`` (with ``extra``), reports to ``metrics``, rows to ``hooks``."""
        self.status_path = status_path
        self.extra = dict(extra)
        """Written into the status file beside the batch (topic, project, engine, ...)."""
        self.metrics = metrics
        self.hooks = tuple(hooks)
        self.progress = EngineProgress()
        self.totals: dict[str, int] = {}
        """Counts since this process started."""
        self.reports: collections.deque[BatchReport] = collections.deque(maxlen=REPORTS_KEPT)
        """The latest :data:`REPORTS_KEPT` batches' reports, in order."""
        self._held: dict[int, StateCounts] = {}
        """What each partition's states held after its last batch (for the status file)."""
        self._last: BatchStatus | None = None
        self._logged_at = -_LOG_EVERY_S
        self._lock = threading.Lock()

    def finish(
        self,
        summaries: Sequence[PartitionSummary],
        batch_id: int,
        wall_s: float,
        seconds: Mapping[str, float],
    ) -> BatchReport:
        """Report a stored batch, call the hooks, keep the totals and write the status.

        Args:
            summaries: what each partition's step did.
            batch_id: the batch's number in this run.
            wall_s: the partitions' work, wall time.
            seconds: the engine's own parts of the batch (its read, its waits), first in the
                report's time parts.
        """
        report = BatchReport.of(summaries, wall_s)
        report.seconds = {**seconds, **report.seconds}
        new_rows = report.hook_frame()
        hooks_began = time.perf_counter()
        if new_rows is not None:
            for hook in self.hooks:
                hook(new_rows)
        report.seconds["hooks (driver)"] = time.perf_counter() - hooks_began
        report.hook_rows = []
        if self.metrics is not None:
            self.metrics.record(report)
        # The per-row samples went to the metrics' histograms; kept, they were most of a
        # report's size (the soak's processor grew ~5 MiB a minute with them).
        report.freshness_s, report.kafka_freshness_s = {}, []
        self.reports.append(report)
        for name in COUNTS:
            self.totals[name] = self.totals.get(name, 0) + int(getattr(report, name))
        for summary in summaries:
            if summary.state_tiles is not None:
                self._held[summary.partition] = StateCounts(
                    summary.state_tiles, summary.state_open_events or 0
                )
        held = sum(self._held.values(), StateCounts()) if self._held else None
        now = time.monotonic()
        level = logging.DEBUG
        if report.dead_letters or now - self._logged_at >= _LOG_EVERY_S:
            level, self._logged_at = logging.INFO, now
        if logger.isEnabledFor(level):
            timing = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in report.seconds.items())
            logger.log(
                level,
                "batch %d: %d records (%d skipped) -> %d rows %s, %d dead letters (%s)",
                batch_id, report.records, report.skipped, report.rows, report.rows_by_view,
                report.dead_letters, timing,
            )  # fmt: skip
        status = BatchStatus(
            batch_id=batch_id,
            finished_at=now_iso(),
            records=report.records,
            rows=report.rows,
            rows_by_view=dict(report.rows_by_view),
            dead_letters=report.dead_letters,
            duplicates=report.duplicates,
            late=report.late,
            seconds={k: round(v, 4) for k, v in report.seconds.items()},
            totals=dict(self.totals),
            state_tiles=held.tiles if held is not None else None,
            state_open_events=held.open_events if held is not None else None,
        )
        with self._lock:
            self._last = status
        self.flush()
        return report

    def flush(self) -> None:
        """Write the status file with the engine's latest progress (from any thread)."""
        with self._lock:
            status = self._last
            if status is None:
                return
            progress = self.progress
            status.lag, status.batch_ms = progress.lag, progress.batch_ms
            status.events_per_s = progress.events_per_s
            status.spark_ms = dict(progress.spark_ms)
            status.python_blocks = sys.getallocatedblocks()
            write_status(self.status_path, status, self.extra)
