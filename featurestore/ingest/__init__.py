"""Ingest: trade sources into the event log, every record sent or dead-lettered.

The Python API::

    store = ConfluentSchemaStore(settings.schema_registry.url)
    options = IngestOptions(settings.kafka.bootstrap, "trades", "dead-letter")
    summary = TradeIngestor(options, store).run(open_trade_file(path))
"""

from __future__ import annotations

from featurestore.ingest.kafka import (
    DeliveryReport,
    EventProducer,
    producer_config,
    wait_for_brokers,
)
from featurestore.ingest.pacing import Pacer
from featurestore.ingest.paths import market_data_dir, shared_dir
from featurestore.ingest.pipeline import (
    DEAD_LETTER_REASON,
    IngestDeliveryError,
    IngestOptions,
    IngestSummary,
    TradeIngestor,
)
from featurestore.ingest.sources import (
    CsvTradeFile,
    LeanTradeFile,
    MarketConfig,
    ParquetTradeFile,
    SourceRecord,
    SyntheticMarket,
    TradeSource,
    merge_by_event_time,
    open_trade_file,
)
from featurestore.ingest.validate import SYMBOL_PATTERN, TradeRejectedError, validate_trade

__all__ = [
    "DEAD_LETTER_REASON",
    "SYMBOL_PATTERN",
    "CsvTradeFile",
    "DeliveryReport",
    "EventProducer",
    "IngestDeliveryError",
    "IngestOptions",
    "IngestSummary",
    "LeanTradeFile",
    "MarketConfig",
    "Pacer",
    "ParquetTradeFile",
    "SourceRecord",
    "SyntheticMarket",
    "TradeIngestor",
    "TradeRejectedError",
    "TradeSource",
    "market_data_dir",
    "merge_by_event_time",
    "open_trade_file",
    "producer_config",
    "shared_dir",
    "validate_trade",
    "wait_for_brokers",
]
