"""The processors' Prometheus metrics, recorded from each micro-batch's report.

A partition's work puts what the metrics need and the report does not count into its summary
row (:func:`observations`: dead letters by reason, when the rows reached Redis, the event times
of those rows, the oldest Kafka timestamp); :meth:`BatchReport.of` gathers them, and the stream
calls :meth:`ProcessorMetrics.record` once per batch on the driver. Nothing is recorded per
record: per batch, per partition, or per entity row written to Redis.

Freshness is measured when the rows are written to Redis, the moment they can be served:

- ``featurestore_processor_freshness_seconds{view}``: write time - the row's event time, for
  every entity row written (a window-end row is as old as its window end);
- ``featurestore_processor_kafka_freshness_seconds``: write time - the Kafka timestamp of the
  oldest record of each partition's batch (the slowest record's time through the pipeline). The
  Kafka timestamp is the broker's append time on a topic with ``LogAppendTime``; on this stack's
  topics (``CreateTime``) it is what the producer set, and ``featurestore ingest`` sets the
  event time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from opentelemetry import metrics

from featurestore.config import Settings
from featurestore.error_maps import postgres_error
from featurestore.kafka_connection import create_client

if TYPE_CHECKING:
    import pyarrow as pa

    from processors.decode import DeadLetter
    from processors.decode import KafkaRecords
    from processors.report import BatchReport

__all__ = [
    "FRESHNESS_BUCKETS",
    "ConsumerLag",
    "ProcessorMetrics",
    "consumer_lag",
    "observations",
    "stage_label",
]

FRESHNESS_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 86400.0,
)  # fmt: skip
"""Seconds: from a live feed (sub-second) to a replay of yesterday's files."""
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def observations(
    records: KafkaRecords,
    dead: list[DeadLetter],
    latest: Mapping[str, pa.Table],
    written_at: float,
) -> str:
    """What one partition's batch adds to its summary row for the metrics (JSON).

    Args:
        records: the partition's records of the batch.
        dead: its dead letters.
        latest: per view, the rows written to Redis.
        written_at: when Redis acknowledged them (``time.time()``).
    """
    # By code: a reason's detail (an entity, an error) would make a series of each dead letter.
    reasons: dict[str, int] = {}
    for letter in dead:
        reasons[letter.code] = reasons.get(letter.code, 0) + 1
    event_s = {}
    for view, table in latest.items():
        if table.num_rows:
            stamps = table.column("event_timestamp").to_numpy().astype("datetime64[ms]")
            event_s[view] = (stamps.astype(np.int64) / 1000.0).tolist()
    oldest = float(records.timestamp_ms.min()) / 1000.0 if len(records) else None
    return json.dumps(
        {
            "dead_letters_by_reason": reasons,
            "written_at": written_at,
            "event_s": event_s if event_s else {},
            "oldest_kafka_s": oldest if event_s else None,
        }
    )


def stage_label(part: str) -> str:
    """``postgres rows + commit (tasks)`` -> ``postgres_rows_commit``: a report part as a label."""
    return re.sub(r"[^a-z0-9]+", "_", part.split(" (")[0].lower()).strip("_")


class ProcessorMetrics:
    """The instruments of one processor (labels ``processor`` and ``topic`` on every sample)."""

    def __init__(self, provider: metrics.MeterProvider, processor: str, topic: str) -> None:
        """Create the instruments on ``provider``'s meter, labelled ``processor`` and ``topic``."""
        meter = provider.get_meter("featurestore.processors")
        self._labels = {"processor": processor, "topic": topic}
        self._events = meter.create_counter(
            "featurestore.processor.events", description="Events applied (replays excluded)"
        )
        self._rows = meter.create_counter(
            "featurestore.processor.rows", description="Feature rows written offline, by view"
        )
        self._online_rows = meter.create_counter(
            "featurestore.processor.online_rows", description="Entity rows written to Redis"
        )
        self._dead_letters = meter.create_counter(
            "featurestore.processor.dead_letters",
            description="Dead letters sent, by reason (invalid, key-mismatch, undecodable, late)",
        )
        self._dropped = meter.create_counter(
            "featurestore.processor.dropped_events",
            description="Events dropped by the feature engine, by reason (late, duplicate)",
        )
        self._stage = meter.create_histogram(
            "featurestore.processor.stage_duration",
            unit="s",
            description="Time of each stage of a micro-batch ((tasks) stages summed over threads)",
            explicit_bucket_boundaries_advisory=STAGE_BUCKETS,
        )
        self._batch = meter.create_histogram(
            "featurestore.processor.batch_duration",
            unit="s",
            description="Time of a micro-batch: Spark's read, the partitions' work and the hooks",
            explicit_bucket_boundaries_advisory=STAGE_BUCKETS,
        )
        self._freshness = meter.create_histogram(
            "featurestore.processor.freshness",
            unit="s",
            description="Time written to Redis - event time, per entity row written, by view",
            explicit_bucket_boundaries_advisory=FRESHNESS_BUCKETS,
        )
        self._kafka_freshness = meter.create_histogram(
            "featurestore.processor.kafka_freshness",
            unit="s",
            description="Time written to Redis - Kafka timestamp of each partition batch's "
            "oldest record",
            explicit_bucket_boundaries_advisory=FRESHNESS_BUCKETS,
        )
        self._state = meter.create_gauge(
            "featurestore.processor.state",
            unit="By",
            description="Size of the partition states stored by the last micro-batch",
        )
        self._lag = meter.create_gauge(
            "featurestore.processor.lag_records",
            description="Records between the last batch read and the topic's end (Spark's view)",
        )
        self._with: dict[tuple[str, str], dict[str, str]] = {}
        from processors.decode import DEAD_LETTER_CODES

        # Every series at zero from the start: one born with its first count is invisible to
        # rate() and increase(), and the first dead letters would not show.
        for code in DEAD_LETTER_CODES:
            self._dead_letters.add(0, self._at("reason", code))
        for reason in ("late", "duplicate"):
            self._dropped.add(0, self._at("reason", reason))

    def _at(self, key: str, value: str) -> dict[str, str]:
        labels = self._with.get((key, value))
        if labels is None:
            labels = self._with[(key, value)] = {**self._labels, key: value}
        return labels

    def record(self, report: BatchReport) -> None:
        """Record one micro-batch (on the driver, once its rows are stored)."""
        labels = self._labels
        self._events.add(report.records, labels)
        self._online_rows.add(report.online_rows, labels)
        for view, rows in report.rows_by_view.items():
            self._rows.add(rows, self._at("view", view))
        for reason, count in report.dead_letters_by_reason.items():
            self._dead_letters.add(count, self._at("reason", reason))
        self._dropped.add(report.late, self._at("reason", "late"))
        self._dropped.add(report.duplicates, self._at("reason", "duplicate"))
        for part, seconds in report.seconds.items():
            self._stage.record(seconds, self._at("stage", stage_label(part)))
        self._batch.record(sum(_batch_parts(report.seconds)), labels)
        for view, ages in report.freshness_s.items():
            view_labels = self._at("view", view)
            for age in ages:
                self._freshness.record(max(age, 0.0), view_labels)
        for age in report.kafka_freshness_s:
            self._kafka_freshness.record(max(age, 0.0), labels)
        self._state.set(report.state_bytes, labels)

    def lag(self, records: int | None) -> None:
        """Spark's lag after its last progress (None: unknown, not recorded)."""
        if records is not None:
            self._lag.set(records, self._labels)


def _batch_parts(seconds: Mapping[str, float]) -> list[float]:
    """The parts of a batch that follow each other (the ``(tasks)`` ones overlap the wall)."""
    return [v for k, v in seconds.items() if not k.endswith("(tasks)")]


@dataclass(frozen=True)
class ConsumerLag:
    """How far one processor is behind one topic, read from outside it."""

    processor: str
    topic: str
    records: int
    """Records after each partition's stored next offset (of its slowest view), summed."""
    seconds: float
    """The largest, over partitions, of newest record's timestamp - first unapplied record's
    (0 when caught up): seconds of event time, as ``featurestore ingest`` sets the Kafka
    timestamp to the event time."""


def consumer_lag(settings: Settings, processors: Sequence[str]) -> list[ConsumerLag]:
    """The lag of each named processor on each topic it has state for.

    Measured from the state table and the topic, so it goes on growing while the processor is
    down (which is what the lag alert is for); a processor without state yet is left out.

    Raises:
        BackendUnavailableError: PostgreSQL or Kafka cannot be reached.
    """
    import psycopg
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition

    from featurestore.events.replay import end_offsets
    from processors.state_table import STATE_TABLE
    from processors.state_table import ensure_state_table

    try:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            ensure_state_table(conn)
            rows = conn.execute(
                f"SELECT processor, topic, partition, min(next_offset) FROM {STATE_TABLE} "
                "WHERE processor = ANY(%s) GROUP BY processor, topic, partition",
                (list(processors),),
            ).fetchall()
    except psycopg.OperationalError as exc:
        raise postgres_error(exc, "reading the state table") from exc
    applied: dict[tuple[str, str], dict[int, int]] = {}
    for processor, topic, partition, offset in rows:
        applied.setdefault((str(processor), str(topic)), {})[int(partition)] = int(offset)
    consumer = create_client(
        Consumer,
        settings.kafka.connection.consumer("featurestore-lag", **{"enable.auto.commit": False}),
    )
    out = []
    try:
        ends_by_topic: dict[str, dict[int, int]] = {}
        for (processor, topic), offsets in sorted(applied.items()):
            if topic not in ends_by_topic:
                ends_by_topic[topic] = end_offsets(settings.kafka.connection, topic)
            ends = ends_by_topic[topic]
            records, seconds = 0, 0.0
            for partition, end in ends.items():
                next_offset = min(offsets.get(partition, 0), end)
                if next_offset >= end:
                    continue
                records += end - next_offset
                first = _timestamp_at(consumer, TopicPartition(topic, partition, next_offset))
                last = _timestamp_at(consumer, TopicPartition(topic, partition, end - 1))
                if first is not None and last is not None:
                    seconds = max(seconds, (last - first) / 1000.0)
            out.append(ConsumerLag(processor, topic, records, seconds))
    finally:
        consumer.close()
    return out


def _timestamp_at(consumer: Any, partition: Any) -> int | None:
    """The Kafka timestamp (ms) of the record at ``partition``'s offset, None if none came."""
    consumer.assign([partition])
    message = consumer.poll(5.0)
    if message is None or message.error() is not None:
        return None
    return int(message.timestamp()[1])
