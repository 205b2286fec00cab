"""The ingest run's Prometheus metrics, through OpenTelemetry.

Counts are taken from the run's summary every thousand records (and at the end), never per
record; the produce latency (Kafka's own, from ``produce`` to the broker's acknowledgement) is
sampled from one delivery report in :data:`LATENCY_SAMPLE`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics

if TYPE_CHECKING:
    from featurestore.ingest.summary import IngestSummary

__all__ = ["LATENCY_SAMPLE", "IngestMetrics"]

LATENCY_SAMPLE = 64
"""One delivery in this many has its latency recorded."""
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """Records read, sent (per topic), dead-lettered (per reason), and produce latency."""

    def __init__(self, provider: metrics.MeterProvider) -> None:
        """Create the instruments on ``provider``'s meter."""
        meter = provider.get_meter("featurestore.ingest")
        self._read = meter.create_counter(
            "featurestore.ingest.records_read", description="Source records read"
        )
        self._sent = meter.create_counter(
            "featurestore.ingest.records_sent",
            description="Records acknowledged by Kafka on their event topic, by topic",
        )
        self._dead = meter.create_counter(
            "featurestore.ingest.records_dead_lettered",
            description="Records routed to the dead-letter topic, by reason",
        )
        self._latency = meter.create_histogram(
            "featurestore.ingest.produce_latency",
            unit="s",
            description=f"Produce to acknowledgement, one delivery in {LATENCY_SAMPLE}",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._seen_read = 0
        self._seen_sent: dict[str, int] = {}
        self._seen_reasons: dict[str, int] = {}

    def update(self, summary: IngestSummary) -> None:
        """Add what ``summary`` counts beyond what was recorded before."""
        self._read.add(summary.read - self._seen_read)
        self._seen_read = summary.read
        for topic, sent in summary.sent_by_topic.items():
            self._sent.add(sent - self._seen_sent.get(topic, 0), {"topic": topic})
            self._seen_sent[topic] = sent
        for reason, count in summary.reasons.items():
            self._dead.add(count - self._seen_reasons.get(reason, 0), {"reason": reason})
            self._seen_reasons[reason] = count

    def latency(self, seconds: float) -> None:
        """One delivery's produce latency."""
        self._latency.record(seconds)
