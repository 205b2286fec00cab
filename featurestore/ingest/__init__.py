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
from featurestore.ingest.kafka import DeliveryReport
from featurestore.ingest.kafka import EventProducer
from featurestore.ingest.kafka import producer_config
from featurestore.ingest.kafka import wait_for_brokers
from featurestore.ingest.kinds import EVENT_KINDS
from featurestore.ingest.kinds import METRICS
from featurestore.ingest.kinds import QUOTES
from featurestore.ingest.kinds import TRADES
from featurestore.ingest.kinds import EventKind
from featurestore.ingest.kinds import IngestEvent
from featurestore.ingest.pacing import Pacer
from featurestore.ingest.paths import market_data_dir
from featurestore.ingest.paths import shared_dir
from featurestore.ingest.pipeline import IngestDeliveryError
from featurestore.ingest.pipeline import IngestOptions
from featurestore.ingest.pipeline import Ingestor
from featurestore.ingest.routing import DEAD_LETTER_REASON
from featurestore.ingest.routing import Outgoing
from featurestore.ingest.routing import RecordRouter
from featurestore.ingest.sources import *  # noqa: F403  (every source: sources.__all__)
from featurestore.ingest.summary import IngestSummary
from featurestore.ingest.validate import SYMBOL_PATTERN
from featurestore.ingest.validate import RecordRejectedError
from featurestore.ingest.validate import validate_metric
from featurestore.ingest.validate import validate_quote
from featurestore.ingest.validate import validate_trade

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
