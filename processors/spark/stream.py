"""The streaming job: Kafka -> per-symbol state machine -> PostgreSQL, Redis, dead letters.

Exactly-once effect: Spark checkpoints, per micro-batch, the Kafka offsets it read and every
symbol's state; a batch interrupted anywhere (even by SIGKILL) is run again on restart with the
same offsets and the same state, so it emits the same rows, and the sinks are idempotent for a
replayed batch (see :mod:`processors.spark.sink`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from featurestore.config import Settings
from featurestore.definitions import Definitions, load_definitions
from processors.group import GroupJob
from processors.options import ProcessorOptions, processor_dir
from processors.spark.session import build_session
from processors.spark.sink import FeatureSink, RollingHook, SinkReport, now_iso
from processors.spark.stateful import OUTPUT_DDL, STATE_DDL, stateful_function
from processors.status import BatchStatus, write_status
from processors.views import MaterializedViews

__all__ = ["StreamHandle", "kafka_records", "start_stream"]

log = logging.getLogger(__name__)


def kafka_records(reader: Any, settings: Settings, topic: str) -> Any:
    """The Kafka source's columns the processors use (``reader``: readStream or read)."""
    from pyspark.sql import functions

    frame = (
        reader.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
        .option("subscribe", topic)
    )
    return frame, lambda df: df.select(
        "topic", "key", "value", "partition", "offset",
        functions.unix_millis("timestamp").alias("timestamp_ms"),
    )  # fmt: skip


def _lag(progress: Any) -> int | None:
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


@dataclass
class StreamHandle:
    """A running streaming query and what it needs to be stopped cleanly."""

    query: Any
    spark: Any
    sink: FeatureSink
    listener: Any = None
    status_path: Any = None
    totals: dict[str, int] = field(default_factory=dict)
    reports: list[SinkReport] = field(default_factory=list)
    """Every batch's sink report, in order (this process's batches)."""

    def wait(self, stop: threading.Event | None = None, poll_s: float = 1.0) -> None:
        """Block until the query ends (error, or ``stop`` is set: then stop it)."""
        try:
            while self.query.isActive:
                if stop is not None and stop.is_set():
                    break
                self.query.awaitTermination(poll_s)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the query (after its running batch) and release the sinks."""
        if self.listener is not None:
            self.spark.streams.removeListener(self.listener)
            self.listener = None
        if self.query.isActive:
            self.query.stop()
        self.sink.close()
        error = self.query.exception()
        if error is not None:
            raise RuntimeError(f"the processor's streaming query failed: {error}")


class _Progress:
    """Spark's last progress, kept for the status file (listener callbacks run on a thread)."""

    def __init__(self) -> None:
        self.lag: int | None = None
        self.batch_ms: int | None = None
        self.events_per_s: float | None = None


def start_stream(
    settings: Settings,
    options: ProcessorOptions,
    *,
    definitions: Definitions | None = None,
    hooks: Sequence[RollingHook] = (),
) -> StreamHandle:
    """Start the streaming job in this process; returns once the query runs.

    Args:
        settings: where the servers are.
        options: project, topic, Spark and state machine settings.
        definitions: the feature definitions (read from the Feast registry when not given).
        hooks: called with each batch's new rolling_1m rows after they are stored.
    """
    from pyspark.sql.streaming.listener import StreamingQueryListener
    from pyspark.sql.streaming.state import GroupStateTimeout

    topic = options.topic_of(settings)
    definitions = definitions or load_definitions(settings, options.project)
    views = MaterializedViews.resolve(definitions, topic)
    home = processor_dir(settings, options.name)
    spark = build_session(settings, options)
    job = GroupJob(settings.schema_registry.url, views.join_key, options.lateness_us)
    reader, columns = kafka_records(spark.readStream, settings, topic)
    reader = reader.option("startingOffsets", options.starting_offsets)
    if options.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    records = columns(reader.load())
    results = records.groupBy("key").applyInPandasWithState(
        stateful_function(job), OUTPUT_DDL, STATE_DDL, "append", GroupStateTimeout.NoTimeout
    )
    sink = FeatureSink(settings, views, processor=options.name, hooks=hooks)
    progress = _Progress()
    totals: dict[str, int] = {}
    reports: list[SinkReport] = []
    status_path = home / "status.json"

    def on_batch(frame: Any, batch_id: int) -> None:
        began = time.perf_counter()
        rows = [row.asDict() for row in frame.collect()]
        collected = time.perf_counter() - began
        report: SinkReport = sink.write(rows)
        report.seconds = {"spark job + collect": collected, **report.seconds}
        reports.append(report)
        for name in ("records", "bars_rows", "rolling_rows", "dead_letters", "duplicates", "late"):
            totals[name] = totals.get(name, 0) + int(getattr(report, name))
        timing = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in report.seconds.items())
        log.info(
            "batch %d: %d records -> %d bars, %d rolling, %d dead letters (%s)",
            batch_id, report.records, report.bars_rows, report.rolling_rows,
            report.dead_letters, timing,
        )  # fmt: skip
        last[0] = BatchStatus(
            batch_id=batch_id,
            finished_at=now_iso(),
            records=report.records,
            bars_rows=report.bars_rows,
            rolling_rows=report.rolling_rows,
            dead_letters=report.dead_letters,
            duplicates=report.duplicates,
            late=report.late,
            seconds={k: round(v, 4) for k, v in report.seconds.items()},
            lag=progress.lag,
            batch_ms=progress.batch_ms,
            events_per_s=progress.events_per_s,
            totals=dict(totals),
        )
        flush()

    last: list[BatchStatus | None] = [None]
    extra = {"topic": topic, "project": definitions.project, "processor": options.name}

    def flush() -> None:
        status = last[0]
        if status is not None:
            status.lag, status.batch_ms = progress.lag, progress.batch_ms
            status.events_per_s = progress.events_per_s
            write_status(status_path, status, extra)

    class Listener(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's API
            pass

        def onQueryProgress(self, event: Any) -> None:  # noqa: N802
            p = event.progress
            progress.lag = _lag(p)
            progress.batch_ms = int(p.batchDuration)
            progress.events_per_s = float(p.processedRowsPerSecond or 0.0)
            flush()

        def onQueryIdle(self, event: Any) -> None:  # noqa: N802
            pass

        def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
            pass

    listener = Listener()
    spark.streams.addListener(listener)
    query = (
        results.writeStream.queryName(f"processor_{options.name}")
        .foreachBatch(on_batch)
        .option("checkpointLocation", str(home / "checkpoint"))
        .trigger(processingTime=f"{options.trigger_ms} milliseconds")
        .start()
    )
    return StreamHandle(query, spark, sink, listener, status_path, totals, reports)
