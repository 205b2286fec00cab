"""The ingest loop: source records → validation → Avro → Kafka, or → dead-letter topic.

Every record read ends in exactly one of two places (decided by
:class:`~featurestore.ingest.routing.RecordRouter`): the event topic of its kind (a ``Trade``
or a ``Quote`` keyed by symbol, a ``Metric`` keyed by entity, with the event time as the Kafka
timestamp) or the dead-letter topic (the original raw bytes, with ``x-dead-letter-reason``,
``x-source``, ``x-source-line`` and ``x-original-topic`` headers). Both are counted only when
the broker acknowledges them, so that at the end ``sent + dead_lettered == read`` holds, or the
run fails saying how many were not delivered.

One run may send several kinds (a folder of trade and quote files, merged by event time): one
producer, one pacer, so that a paced replay keeps trades and quotes interleaved as they were.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Self

from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.events.registry import SchemaStore
from featurestore.events.serde import AvroSerializer
from featurestore.ingest.kafka import EventProducer
from featurestore.ingest.kafka import producer_config
from featurestore.ingest.kafka import wait_for_brokers
from featurestore.ingest.metrics import IngestMetrics
from featurestore.ingest.pacing import Pacer
from featurestore.ingest.routing import DEAD_LETTER_REASON
from featurestore.ingest.routing import RecordRouter
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.summary import IngestSummary
from featurestore.kafka_connection import KafkaConnection
from featurestore.resilience import Health
from featurestore.resilience import Retrier
from featurestore.resilience import Stopped
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics

__all__ = [
    "DEAD_LETTER_REASON",
    "IngestDeliveryError",
    "IngestOptions",
    "Ingestor",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Where and how to ingest."""

    kafka: KafkaConnection
    """The cluster the events go to (``settings.kafka.connection``)."""
    topics: Mapping[RecordKind, str]
    """The event topic of each kind this run sends, e.g. ``{"trade": "trades"}``; a record of
    another kind is dead-lettered (reason ``no_topic``)."""
    dead_letter_topic: str
    partitions: int = 4
    """Partitions of topics this run creates."""
    replication_factor: int | None = None
    """Replicas of topics this run creates (None: the smaller of 3 and the brokers)."""
    min_insync_replicas: int | None = None
    """``min.insync.replicas`` of topics this run creates (None: the factor less 1, at least 1)."""
    speed: float | None = None
    """Multiple of real time to replay at; ``None`` is as fast as possible."""
    live: bool = False
    """The event times are the wall clock's: each event is held until its own time (``Pacer``)."""
    connect_timeout_s: float = 60.0
    """How long to wait for a broker, and then for the schema registry, before giving up."""
    delivery_timeout_s: float = 600.0
    """How long one record may stay undelivered (broker away) before it counts as failed; the
    producer retries until then, so an outage shorter than this loses nothing."""
    progress_every: int = 0
    """Call the progress callback every this many records read (0: never)."""


class IngestDeliveryError(BackendUnavailableError):
    """Some records were not acknowledged by Kafka; :attr:`summary` says how many."""

    def __init__(self, summary: IngestSummary) -> None:
        """Say how many records of ``summary`` were not acknowledged."""
        first = "; ".join(summary.errors[:3]) or "not acknowledged before the timeout"
        super().__init__(
            f"{summary.read - summary.sent - summary.dead_lettered} of {summary.read} records were"
            f" not delivered: {first}"
        )
        self.summary = summary


class Ingestor:
    """Ingests sources of trades, quotes and metrics into their topics (and the dead letters)."""

    def __init__(
        self,
        options: IngestOptions,
        store: SchemaStore,
        *,
        on_wait: Callable[[str], None] | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        """Wait for Kafka, create the topics if absent and register each kind's schema.

        ``metrics``: updated every thousand records and at the end (Prometheus).

        Raises:
            ConfigurationError: no event topic is given.
            BackendUnavailableError: Kafka or the schema registry cannot be reached.
            SchemaError: the registry refuses a schema as incompatible with its topic's.
        """
        if not options.topics:
            raise ConfigurationError("ingest needs the event topic of at least one kind")
        self.options = options
        admin = wait_for_brokers(
            options.kafka, timeout_s=options.connect_timeout_s, on_wait=on_wait
        )
        names = sorted({*options.topics.values(), options.dead_letter_topic})
        ensure_topics(
            admin,
            [TopicSpec(name, options.partitions) for name in names],
            replication_factor=options.replication_factor,
            min_insync_replicas=options.min_insync_replicas,
        )

        # A registry away (or electing its leader) is waited for, reported through on_wait, as
        # long as Kafka is: then the last reason is the error.
        def report(away: dict[str, str]) -> None:
            if on_wait is not None and away:
                on_wait("waiting: " + "; ".join(f"{k} away: {why}" for k, why in away.items()))

        deadline = time.monotonic() + options.connect_timeout_s

        def wait_within(stop: threading.Event, seconds: float) -> bool:
            left = deadline - time.monotonic()
            return left <= 0 or stop.wait(min(seconds, left))

        try:
            self.router = Retrier(health=Health(report), sleep=wait_within).call(
                lambda: RecordRouter(options.topics, options.dead_letter_topic, store),
                "registering the schemas",
            )
        except Stopped as exc:
            raise BackendUnavailableError(
                f"the schema registry did not answer within {options.connect_timeout_s:.0f} s:"
                f" {exc.__cause__}"
            ) from exc
        self.producer = EventProducer(
            producer_config(options.kafka, delivery_timeout_s=options.delivery_timeout_s)
        )
        self.metrics = metrics
        if metrics is not None:
            self.producer.on_latency = metrics.latency

    def __enter__(self) -> Self:
        """The ingestor itself; leaving releases its producer (:meth:`close`)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the producer."""
        self.close()

    def close(self) -> None:
        """Release the producer's client (:meth:`run` has waited for its records already)."""
        self.producer.close(timeout_s=1.0)

    def serializer(self, kind: RecordKind) -> AvroSerializer[Any]:
        """Return the serializer of a kind's topic (its schema id is the one registered)."""
        return self.router.serializer(kind)

    def run(
        self,
        records: Iterable[SourceRecord],
        *,
        progress: Callable[[IngestSummary], None] | None = None,
    ) -> IngestSummary:
        """Ingest every record, wait for all acknowledgements and return the summary.

        Raises:
            IngestDeliveryError: some records were not acknowledged (the summary is attached).
        """
        opts = self.options
        topics = tuple(dict.fromkeys(opts.topics.values()))
        summary = IngestSummary(topics, opts.dead_letter_topic)
        producer = self.producer
        route = self.router.route
        pacer = Pacer(opts.speed, idle=producer.poll, live=opts.live)
        started = time.monotonic()
        next_metrics = started + 1.0
        for record in records:
            summary.read += 1
            out = route(record)
            if out.reason_code is not None:
                summary.reasons[out.reason_code] += 1
            if out.event_time is not None:
                pacer.wait(out.event_time)
            producer.produce(
                out.topic,
                out.value,
                key=out.key,
                timestamp_ms=out.timestamp_ms,
                headers=list(out.headers) or None,
            )
            if summary.read % 1000 == 0:
                producer.poll(0)
            # Metrics every 1,000 records and at least every second: a replay paced in real
            # time may send a few records a second, and Prometheus scrapes while it runs.
            if self.metrics is not None and (
                summary.read % 1000 == 0 or time.monotonic() >= next_metrics
            ):
                self._tally(summary, started)
                self.metrics.update(summary)
                next_metrics = time.monotonic() + 1.0
            if (
                progress is not None
                and opts.progress_every
                and summary.read % opts.progress_every == 0
            ):
                self._tally(summary, started)
                progress(summary)
        left = producer.flush(opts.delivery_timeout_s + 5)
        self._tally(summary, started)
        if self.metrics is not None:
            self.metrics.update(summary)
        if left or not summary.balanced:
            summary.failed = max(
                summary.failed, summary.read - summary.sent - summary.dead_lettered
            )
            raise IngestDeliveryError(summary)
        return summary

    def _tally(self, summary: IngestSummary, started: float) -> None:
        report = self.producer.report
        summary.sent_by_topic = {topic: report.count(topic) for topic in summary.topics}
        summary.sent = sum(summary.sent_by_topic.values())
        summary.dead_lettered = report.count(summary.dead_letter_topic)
        summary.failed = report.total_failed
        summary.errors = list(report.errors)
        summary.elapsed_s = time.monotonic() - started
