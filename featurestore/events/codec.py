"""Conversion between domain events and Avro wire dicts: the only place both shapes meet.

Timestamps travel as integer microseconds since the epoch (``timestamp-micros``); fastavro
hands them back as aware ``datetime`` values, and both forms are accepted on the way in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from featurestore.errors import SchemaError
from featurestore.events.model import Anomaly, Event, Metric, PredictionLog, Quote, Trade

__all__ = [
    "Codec",
    "codec_for",
    "codec_for_type",
    "from_micros",
    "to_micros",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)

E = TypeVar("E", Trade, Quote, Metric, Anomaly, PredictionLog)
WireDict = dict[str, Any]


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: event times must be timezone-aware")
    return (value - EPOCH) // _ONE_MICRO


def from_micros(value: int | datetime) -> datetime:
    """Return an aware UTC datetime from epoch microseconds (or from a fastavro datetime)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return EPOCH + timedelta(microseconds=value)


def _opt_time(value: int | datetime | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _trade_to_wire(t: Trade) -> WireDict:
    return {
        "symbol": t.symbol,
        "price": t.price,
        "size": t.size,
        "event_time": to_micros(t.event_time),
        "exchange": t.exchange,
        "conditions": list(t.conditions),
        "trade_id": t.trade_id,
        "currency": t.currency,
        "source": t.source,
    }


def _trade_from_wire(d: Mapping[str, Any]) -> Trade:
    return Trade(
        symbol=d["symbol"],
        price=d["price"],
        size=d["size"],
        event_time=from_micros(d["event_time"]),
        exchange=d["exchange"],
        trade_id=d["trade_id"],
        conditions=tuple(d.get("conditions", ())),
        currency=d.get("currency", "USD"),
        source=d.get("source", ""),
    )


def _quote_to_wire(q: Quote) -> WireDict:
    return {
        "symbol": q.symbol,
        "event_time": to_micros(q.event_time),
        "bid_price": q.bid_price,
        "bid_size": q.bid_size,
        "ask_price": q.ask_price,
        "ask_size": q.ask_size,
        "exchange": q.exchange,
        "quote_id": q.quote_id,
        "conditions": list(q.conditions),
        "currency": q.currency,
        "source": q.source,
    }


def _quote_from_wire(d: Mapping[str, Any]) -> Quote:
    return Quote(
        symbol=d["symbol"],
        event_time=from_micros(d["event_time"]),
        bid_price=d["bid_price"],
        bid_size=d["bid_size"],
        ask_price=d["ask_price"],
        ask_size=d["ask_size"],
        quote_id=d["quote_id"],
        exchange=d.get("exchange"),
        conditions=tuple(d.get("conditions", ())),
        currency=d.get("currency", "USD"),
        source=d.get("source", ""),
    )


def _metric_to_wire(m: Metric) -> WireDict:
    return {
        "entity": m.entity,
        "event_time": to_micros(m.event_time),
        "value": m.value,
        "name": m.name,
        "tags": dict(m.tags),
        "metric_id": m.metric_id,
        "source": m.source,
    }


def _metric_from_wire(d: Mapping[str, Any]) -> Metric:
    return Metric(
        entity=d["entity"],
        event_time=from_micros(d["event_time"]),
        value=d["value"],
        metric_id=d["metric_id"],
        name=d.get("name", "value"),
        tags=dict(d.get("tags", {})),
        source=d.get("source", ""),
    )


def _anomaly_to_wire(a: Anomaly) -> WireDict:
    return {
        "anomaly_id": a.anomaly_id,
        "symbol": a.symbol,
        "event_time": to_micros(a.event_time),
        "score": a.score,
        "threshold": a.threshold,
        "model_name": a.model_name,
        "model_version": a.model_version,
        "features": dict(a.features),
        "detected_at": to_micros(a.detected_at),
    }


def _anomaly_from_wire(d: Mapping[str, Any]) -> Anomaly:
    return Anomaly(
        anomaly_id=d["anomaly_id"],
        symbol=d["symbol"],
        event_time=from_micros(d["event_time"]),
        score=d["score"],
        threshold=d.get("threshold"),
        model_name=d["model_name"],
        model_version=d["model_version"],
        features=dict(d.get("features", {})),
        detected_at=from_micros(d["detected_at"]),
    )


def _prediction_to_wire(p: PredictionLog) -> WireDict:
    return {
        "request_id": p.request_id,
        "model_name": p.model_name,
        "model_version": p.model_version,
        "entity": dict(p.entity),
        "features": dict(p.features),
        "prediction": p.prediction,
        "feature_time": None if p.feature_time is None else to_micros(p.feature_time),
        "request_time": to_micros(p.request_time),
        "response_time": to_micros(p.response_time),
    }


def _prediction_from_wire(d: Mapping[str, Any]) -> PredictionLog:
    return PredictionLog(
        request_id=d["request_id"],
        model_name=d["model_name"],
        model_version=d["model_version"],
        entity=dict(d["entity"]),
        features=dict(d.get("features", {})),
        prediction=d["prediction"],
        feature_time=_opt_time(d.get("feature_time")),
        request_time=from_micros(d["request_time"]),
        response_time=from_micros(d["response_time"]),
    )


@dataclass(frozen=True, slots=True)
class Codec(Generic[E]):
    """How one domain type maps to its Avro record."""

    event_type: type[E]
    schema_name: str
    """Name of the bundled ``.avsc`` file (without extension)."""
    full_name: str
    """Avro full name of the record."""
    to_wire: Callable[[E], WireDict]
    from_wire: Callable[[Mapping[str, Any]], E]


TRADE_CODEC = Codec(Trade, "trade", "featurestore.v1.Trade", _trade_to_wire, _trade_from_wire)
QUOTE_CODEC = Codec(Quote, "quote", "featurestore.v1.Quote", _quote_to_wire, _quote_from_wire)
METRIC_CODEC = Codec(Metric, "metric", "featurestore.v1.Metric", _metric_to_wire, _metric_from_wire)
ANOMALY_CODEC = Codec(
    Anomaly, "anomaly", "featurestore.v1.Anomaly", _anomaly_to_wire, _anomaly_from_wire
)
PREDICTION_CODEC = Codec(
    PredictionLog,
    "prediction_log",
    "featurestore.v1.PredictionLog",
    _prediction_to_wire,
    _prediction_from_wire,
)
_CODECS: tuple[Codec[Any], ...] = (
    TRADE_CODEC,
    QUOTE_CODEC,
    METRIC_CODEC,
    ANOMALY_CODEC,
    PREDICTION_CODEC,
)
_BY_NAME: dict[str, Codec[Any]] = {c.full_name: c for c in _CODECS}
_BY_TYPE: dict[type[Any], Codec[Any]] = {c.event_type: c for c in _CODECS}


def codec_for(full_name: str) -> Codec[Any]:
    """Return the codec of an Avro record full name.

    Raises:
        SchemaError: the record is not one of the store's events.

    """
    try:
        return _BY_NAME[full_name]
    except KeyError:
        raise SchemaError(f"no event type for Avro record {full_name!r}") from None


def codec_for_type(event_type: type[Event]) -> Codec[Any]:
    """Return the codec of a domain event type."""
    return _BY_TYPE[event_type]
