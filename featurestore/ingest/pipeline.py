"""The ingest loop: source records → validation → Avro → Kafka, or → dead-letter topic.

Every record read ends in exactly one of two places: the event topic (as a ``Trade``, keyed by
symbol, with the event time as the Kafka timestamp) or the dead-letter topic (the original raw
bytes, with ``x-dead-letter-reason``, ``x-source``, ``x-source-line`` and ``x-original-topic``
headers). Both are counted only when the broker acknowledges them, so that at the end
``sent + dead_lettered == read`` holds, or the run fails saying how many were not delivered.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from featurestore.errors import BackendUnavailableError
from featurestore.events.codec import to_micros
from featurestore.events.model import Trade
from featurestore.events.registry import SchemaStore
from featurestore.events.serde import AvroSerializer
from featurestore.events.wire import SerializationError
from featurestore.ingest.kafka import (
    EventProducer,
    producer_config,
    wait_for_brokers,
)
from featurestore.ingest.pacing import Pacer
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.validate import TradeRejectedError, validate_trade
from featurestore.topics import TopicSpec, ensure_topics

__all__ = [
    "DEAD_LETTER_REASON",
    "IngestDeliveryError",
    "IngestOptions",
    "IngestSummary",
    "TradeIngestor",
]

log = logging.getLogger(__name__)

DEAD_LETTER_REASON = "x-dead-letter-reason"


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Where and how to ingest."""

    bootstrap: str
    topic: str
    dead_letter_topic: str
    partitions: int = 4
    """Partitions of topics this run creates."""
    speed: float | None = None
    """Multiple of real time to replay at; ``None`` is as fast as possible."""
    connect_timeout_s: float = 60.0
    """How long to wait for a broker to answer before giving up."""
    delivery_timeout_s: float = 120.0
    """How long one record may stay undelivered (broker away) before it counts as failed."""
    progress_every: int = 0
    """Call the progress callback every this many records read (0: never)."""


@dataclass
class IngestSummary:
    """What one ingest run read, sent and dead-lettered."""

    topic: str
    dead_letter_topic: str
    read: int = 0
    sent: int = 0
    """Records acknowledged on the event topic."""
    dead_lettered: int = 0
    """Records acknowledged on the dead-letter topic."""
    failed: int = 0
    """Records the broker never acknowledged."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Dead-letter counts by reason code."""
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Tell whether every record read is accounted for by an acknowledgement."""
        return self.sent + self.dead_lettered == self.read and self.failed == 0


class IngestDeliveryError(BackendUnavailableError):
    """Some records were not acknowledged by Kafka; :attr:`summary` says how many."""

    def __init__(self, summary: IngestSummary) -> None:
        first = "; ".join(summary.errors[:3]) or "not acknowledged before the timeout"
        super().__init__(
            f"{summary.read - summary.sent - summary.dead_lettered} of {summary.read} records were"
            f" not delivered: {first}"
        )
        self.summary = summary


class TradeIngestor:
    """Ingests trade sources into one topic (and its dead-letter topic)."""

    def __init__(
        self,
        options: IngestOptions,
        store: SchemaStore,
        *,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """Wait for Kafka, create the topics if absent and register the Trade schema.

        Raises:
            BackendUnavailableError: Kafka or the schema registry cannot be reached.
        """
        self.options = options
        admin = wait_for_brokers(
            options.bootstrap, timeout_s=options.connect_timeout_s, on_wait=on_wait
        )
        ensure_topics(
            admin,
            [
                TopicSpec(options.topic, options.partitions),
                TopicSpec(options.dead_letter_topic, options.partitions),
            ],
        )
        self.serializer = AvroSerializer.for_topic(store, options.topic, Trade)
        self.producer = EventProducer(
            producer_config(options.bootstrap, delivery_timeout_s=options.delivery_timeout_s)
        )

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
        summary = IngestSummary(opts.topic, opts.dead_letter_topic)
        producer = self.producer
        pacer = Pacer(opts.speed, idle=producer.poll)
        encode = self.serializer.encode
        started = time.monotonic()
        for record in records:
            summary.read += 1
            try:
                trade = validate_trade(record)
                value = encode(trade)
            except (TradeRejectedError, SerializationError) as exc:
                code = exc.code if isinstance(exc, TradeRejectedError) else "unserializable"
                reason = exc.reason if isinstance(exc, TradeRejectedError) else f"{code}: {exc}"
                summary.reasons[code] += 1
                self._dead_letter(record, reason)
            else:
                pacer.wait(trade.event_time)
                producer.produce(
                    opts.topic,
                    value,
                    key=trade.symbol.encode(),
                    timestamp_ms=to_micros(trade.event_time) // 1000,
                )
            if summary.read % 1000 == 0:
                producer.poll(0)
            if (
                progress is not None
                and opts.progress_every
                and summary.read % opts.progress_every == 0
            ):
                self._tally(summary, started)
                progress(summary)
        left = producer.flush(opts.delivery_timeout_s + 5)
        self._tally(summary, started)
        if left or not summary.balanced:
            summary.failed = max(
                summary.failed, summary.read - summary.sent - summary.dead_lettered
            )
            raise IngestDeliveryError(summary)
        return summary

    def _tally(self, summary: IngestSummary, started: float) -> None:
        report = self.producer.report
        summary.sent = report.count(summary.topic)
        summary.dead_lettered = report.count(summary.dead_letter_topic)
        summary.failed = report.total_failed
        summary.errors = list(report.errors)
        summary.elapsed_s = time.monotonic() - started

    def _dead_letter(self, record: SourceRecord, reason: str) -> None:
        symbol = record.fields.get("symbol")
        self.producer.produce(
            self.options.dead_letter_topic,
            record.raw_bytes(),
            key=symbol.encode() if isinstance(symbol, str) else None,
            headers=[
                (DEAD_LETTER_REASON, reason.encode()),
                ("x-source", record.source.encode()),
                ("x-source-line", str(record.line).encode()),
                ("x-original-topic", self.options.topic.encode()),
            ],
        )
