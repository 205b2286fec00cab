"""Ingest: trade, quote and metric sources into the event log, every record sent or dead-lettered.

The Python API::

    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    options = IngestOptions(
        settings.kafka.connection,
        {"trade": settings.topics.trades, "quote": settings.topics.quotes},
        settings.topics.dead_letter,
    )
    with Ingestor(options, store) as ingestor:  # closing releases its Kafka producer
        summary = ingestor.run(open_event_file(path))
"""

from __future__ import annotations

from featurestore.ingest import sources
from featurestore.ingest.kafka import (
    DeliveryReport,
    EventProducer,
    producer_config,
    wait_for_brokers,
)
from featurestore.ingest.kinds import EVENT_KINDS, METRICS, QUOTES, TRADES, EventKind, IngestEvent
from featurestore.ingest.pacing import Pacer
from featurestore.ingest.paths import market_data_dir, shared_dir
from featurestore.ingest.pipeline import IngestDeliveryError, IngestOptions, Ingestor
from featurestore.ingest.routing import DEAD_LETTER_REASON, Outgoing, RecordRouter
from featurestore.ingest.sources import *  # noqa: F403  (every source: sources.__all__)
from featurestore.ingest.summary import IngestSummary
from featurestore.ingest.validate import (
    SYMBOL_PATTERN,
    RecordRejectedError,
    validate_metric,
    validate_quote,
    validate_trade,
)

__all__ = [
    "DEAD_LETTER_REASON",
    "EVENT_KINDS",
    "METRICS",
    "QUOTES",
    "SYMBOL_PATTERN",
    "TRADES",
    "DeliveryReport",
    "EventKind",
    "EventProducer",
    "IngestDeliveryError",
    "IngestEvent",
    "IngestOptions",
    "IngestSummary",
    "Ingestor",
    "Outgoing",
    "Pacer",
    "RecordRejectedError",
    "RecordRouter",
    "market_data_dir",
    "producer_config",
    "shared_dir",
    "validate_metric",
    "validate_quote",
    "validate_trade",
    "wait_for_brokers",
    *sources.__all__,
]
