"""The Spark side of the processors: session, the streaming job, the backfill, the sinks.

``pyspark`` is imported by these modules only, so the state machine and its tests never pay for
it.
"""

from __future__ import annotations

from processors.spark.backfill import BackfillRange, run_backfill
from processors.spark.sink import FeatureSink, RollingHook, SinkReport
from processors.spark.stream import StreamHandle, start_stream

__all__ = [
    "BackfillRange",
    "FeatureSink",
    "RollingHook",
    "SinkReport",
    "StreamHandle",
    "run_backfill",
    "start_stream",
]
