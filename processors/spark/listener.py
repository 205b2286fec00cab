"""Spark's progress events into a processor's status and metrics (imports pyspark)."""

from __future__ import annotations

import json
import logging
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from processors.metrics import ProcessorMetrics
from processors.recorder import BatchRecorder

__all__ = ["ProgressListener", "lag"]

logger = logging.getLogger("processors.spark.stream")


def lag(progress: Any) -> int | None:
    """Records between what the last batch read and the topic's end, from Spark's progress."""
    total = 0
    for source in progress.sources:
        try:
            end = json.loads(source.endOffset or "{}")
            latest = json.loads(source.latestOffset or "{}")
        except (TypeError, ValueError):
            return None
        for topic, partitions in latest.items():
            for partition, offset in partitions.items():
                total += max(0, int(offset) - int(end.get(topic, {}).get(partition, 0)))
    return total


class ProgressListener(StreamingQueryListener):
    """After each micro-batch: the lag, Spark's timings and the rate, into the status file."""

    def __init__(self, recorder: BatchRecorder, metrics: ProcessorMetrics | None) -> None:
        """Write into ``recorder``'s progress (and its status file) and ``metrics``' lag."""
        super().__init__()
        self._recorder = recorder
        self._metrics = metrics

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's API
        """Nothing to record."""

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        """Record the batch's progress and write the status file."""
        p = event.progress
        progress = self._recorder.progress
        progress.lag = lag(p)
        if self._metrics is not None:
            self._metrics.lag(progress.lag)
        progress.batch_ms = int(p.batchDuration)
        progress.events_per_s = float(p.processedRowsPerSecond or 0.0)
        progress.spark_ms = {k: int(v) for k, v in dict(p.durationMs or {}).items()}
        logger.debug("spark batch %d: %s ms", p.batchId, progress.spark_ms)
        self._recorder.flush()

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        """Nothing to record."""

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        """Nothing to record (the handle reports the query's end)."""
