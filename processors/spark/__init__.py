"""The Spark side of the processors: session, the streaming job, the backfill.

``pyspark`` is imported by these modules only, so the state machine and its tests never pay for
it.
"""

from __future__ import annotations

from processors.report import BatchReport
from processors.spark.backfill import BackfillRange
from processors.spark.backfill import run_backfill
from processors.spark.stream import RowsHook
from processors.spark.stream import StreamHandle
from processors.spark.stream import start_stream

__all__ = [
    "BackfillRange",
    "BatchReport",
    "RowsHook",
    "StreamHandle",
    "run_backfill",
    "start_stream",
]
