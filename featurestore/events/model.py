"""Domain events: frozen dataclasses, free of any wire format.

These are what the rest of the store handles. Avro dicts exist only inside
:mod:`featurestore.events.codec`, at the serializer edge. Timestamps are timezone-aware UTC
``datetime`` values with microsecond precision, which is exactly what ``timestamp-micros`` holds.

Constructors do not validate: untrusted input is checked once, where it enters
(:mod:`featurestore.ingest.validate`), so that decoding the log stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

__all__ = ["Anomaly", "Event", "Metric", "PredictionLog", "Quote", "Trade"]


@dataclass(frozen=True, slots=True)
class Trade:
    """One executed trade of an instrument."""

    symbol: str
    """Upper-case ticker; the Kafka key, so one symbol's trades stay ordered."""
    price: float
    """Price per unit in :attr:`currency`."""
    size: int
    """Quantity traded (shares)."""
    event_time: datetime
    """When the trade happened (aware, UTC)."""
    exchange: str
    """Venue code as given by the source."""
    trade_id: str
    """Unique per source; ``<file>:<line>`` where the source has none."""
    conditions: tuple[str, ...] = ()
    """Sale condition codes as given by the source."""
    currency: str = "USD"
    """ISO 4217 quote currency."""
    source: str = ""
    """Lineage: the file, feed or generator the event came from."""


@dataclass(frozen=True, slots=True)
class Quote:
    """The top of the book of an instrument after one update: best bid and best ask."""

    symbol: str
    """Upper-case ticker; the Kafka key, so one symbol's quotes stay ordered."""
    event_time: datetime
    """When the book took this state (aware, UTC)."""
    bid_price: float
    """Best bid per unit in :attr:`currency`."""
    bid_size: int
    """Quantity bid at :attr:`bid_price` (shares)."""
    ask_price: float
    """Best ask per unit in :attr:`currency`; never below :attr:`bid_price`."""
    ask_size: int
    """Quantity offered at :attr:`ask_price` (shares)."""
    quote_id: str
    """Unique per source; ``<file>:<line>`` where the source has none."""
    exchange: str | None = None
    """Venue code of the update as given by the source, when it names one."""
    conditions: tuple[str, ...] = ()
    """Quote condition codes as given by the source."""
    currency: str = "USD"
    """ISO 4217 quote currency."""
    source: str = ""
    """Lineage: the file, feed or generator the event came from."""


@dataclass(frozen=True, slots=True)
class Metric:
    """One observation of a named numeric metric of an entity (a host, a user, a sensor)."""

    entity: str
    """The entity the value belongs to; the Kafka key, so one entity's values stay ordered."""
    event_time: datetime
    """When the value was observed (aware, UTC)."""
    value: float
    """The observed value."""
    metric_id: str
    """Unique per source; ``<file>:<line>`` where the source has none."""
    name: str = "value"
    """The metric's name, for example ``cpu_load``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Free-form dimensions of the observation (region, unit, ...)."""
    source: str = ""
    """Lineage: the file, feed or generator the event came from."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An anomaly score a model gave the features of one symbol at one event time."""

    anomaly_id: str
    symbol: str
    event_time: datetime
    score: float
    model_name: str
    model_version: str
    detected_at: datetime
    """Processing time at which the scorer emitted it."""
    features: Mapping[str, float] = field(default_factory=dict)
    """The feature values behind the score."""
    threshold: float | None = None
    """Score above which the model flags an anomaly, when it has one."""


@dataclass(frozen=True, slots=True)
class PredictionLog:
    """One prediction served, with the exact features it used."""

    request_id: str
    model_name: str
    model_version: str
    entity: Mapping[str, str]
    """Entity key columns and values, for example ``{"symbol": "IBM"}``."""
    prediction: float
    request_time: datetime
    response_time: datetime
    features: Mapping[str, float | None] = field(default_factory=dict)
    """Feature values used; ``None`` where a feature was missing."""
    feature_time: datetime | None = None
    """Event time of the newest feature row used."""


Event = Trade | Quote | Metric | Anomaly | PredictionLog
"""Any event the store writes to its log."""
