"""Batch mode: the stream's per-partition function over a whole topic (or a range of it).

The topic is read with ``spark.read`` (one task per Kafka partition) and each partition's records
go through :class:`processors.partition_job.PartitionJob` from a fresh state, without the state
table, committing every ``chunk`` records. Over the same events this gives the same rows as the
stream (upserts keep the newest emission), which a test checks. A range that does not start at
the topic's beginning starts from an empty state at its first record, so its rolling windows
fill up from there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import load_definitions
from featurestore.errors import ConfigurationError
from processors.options import ProcessorOptions
from processors.partition_job import SUMMARY_DDL
from processors.partition_job import PartitionJob
from processors.report import BatchReport
from processors.spark.executors import start_session
from processors.spark.stream import kafka_records
from processors.summary import PartitionSummary
from processors.views import MaterializedViews

__all__ = ["BackfillRange", "run_backfill"]


@dataclass(frozen=True)
class BackfillRange:
    """Which records to read: all by default; a time range or Spark's JSON offsets otherwise.

    Times are Kafka record times (the ingest sets them to the event's time).
    """

    start: datetime | str | None = None
    """Inclusive start: a time, or JSON offsets such as ``{"trades":{"0":100,"1":0}}``."""
    end: datetime | str | None = None
    """Exclusive end: a time, or JSON offsets."""

    def options(self) -> dict[str, str]:
        """The Kafka source options that select the range."""
        opts = {"startingOffsets": "earliest", "endingOffsets": "latest"}
        for bound, prefix in ((self.start, "starting"), (self.end, "ending")):
            if bound is None:
                continue
            if isinstance(bound, datetime):
                if bound.tzinfo is None:
                    raise ConfigurationError(f"backfill {prefix} time must have a timezone")
                opts.pop(f"{prefix}Offsets")
                opts[f"{prefix}Timestamp"] = str(int(bound.timestamp() * 1000))
            else:
                opts[f"{prefix}Offsets"] = bound
        return opts


def run_backfill(
    settings: Settings,
    options: ProcessorOptions,
    span: BackfillRange | None = None,
    *,
    definitions: Definitions | None = None,
    chunk: int = 200_000,
) -> BatchReport:
    """Process the topic (or ``span`` of it) in one Spark batch job and store the rows.

    Each task streams its Kafka partition through in chunks of ``chunk`` records (committed
    one by one, the state carried from one to the next), so its memory does not grow with the
    log.
    """
    topic = options.topic_of(settings)
    definitions = definitions or load_definitions(settings, options.project)
    views = MaterializedViews.resolve(definitions, topic)
    spark, _ = start_session(settings, options)
    job = PartitionJob(settings, views, f"{options.name}-backfill", stateful=False, chunk=chunk)
    reader, columns = kafka_records(spark.read, settings, topic)
    for key, value in (span or BackfillRange()).options().items():
        reader = reader.option(key, value)
    began = time.perf_counter()
    rows = columns(reader.load()).mapInArrow(job, SUMMARY_DDL).collect()
    summaries = [PartitionSummary.from_row(r.asDict()) for r in rows]
    return BatchReport.of(summaries, time.perf_counter() - began)
