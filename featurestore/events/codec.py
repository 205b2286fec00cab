"""Conversion between domain events and Avro wire dicts: the only place both shapes meet.

Each field of an event is the Avro field of the same name (a test holds the bundled schemas to
it), converted by its type alone: timestamps travel as integer microseconds since the epoch
(``timestamp-micros``), and fastavro hands them back as aware ``datetime`` values, both accepted on
the way in; tuples travel as arrays, mappings as maps. A field the record lacks takes the event's
default; a required one is a :class:`~featurestore.errors.SchemaError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import MISSING
from dataclasses import dataclass
from dataclasses import fields
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Generic
from typing import TypeVar
from typing import get_args
from typing import get_origin
from typing import get_type_hints

from featurestore.errors import SchemaError
from featurestore.events.model import Anomaly
from featurestore.events.model import Event
from featurestore.events.model import Metric
from featurestore.events.model import PredictionLog
from featurestore.events.model import Quote
from featurestore.events.model import Trade

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


_Convert = Callable[[Any], Any]


def _optional(convert: _Convert) -> _Convert:
    return lambda value: None if value is None else convert(value)


def _converters(hint: Any) -> tuple[_Convert | None, _Convert | None]:
    """How a field of type ``hint`` goes to the wire and back (None: as it is)."""
    args = set(get_args(hint))
    if hint is datetime:
        return to_micros, from_micros
    if args == {datetime, type(None)}:
        return _optional(to_micros), _optional(from_micros)
    origin = get_origin(hint)
    if origin is tuple:
        return list, tuple
    if origin in (Mapping, dict):
        return dict, dict
    return None, None


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    to_wire: _Convert | None
    from_wire: _Convert | None
    required: bool


def _fields_of(event_type: type[Any]) -> tuple[_Field, ...]:
    """The event's fields, each the Avro field of the same name (their schemas are checked)."""
    hints = get_type_hints(event_type)
    return tuple(
        _Field(
            f.name,
            *_converters(hints[f.name]),
            required=f.default is MISSING and f.default_factory is MISSING,
        )
        for f in fields(event_type)
    )


def _to_wire(plan: tuple[_Field, ...]) -> Callable[[Any], WireDict]:
    def to_wire(event: Any) -> WireDict:
        wire: WireDict = {}
        for f in plan:
            value = getattr(event, f.name)
            wire[f.name] = value if f.to_wire is None else f.to_wire(value)
        return wire

    return to_wire


def _from_wire(event_type: type[E], plan: tuple[_Field, ...]) -> Callable[[Mapping[str, Any]], E]:
    def from_wire(wire: Mapping[str, Any]) -> E:
        given: dict[str, Any] = {}
        for f in plan:
            if f.name in wire:
                value = wire[f.name]
                given[f.name] = value if f.from_wire is None else f.from_wire(value)
            elif f.required:
                raise SchemaError(f"{event_type.__name__} record has no field {f.name!r}")
        return event_type(**given)

    return from_wire


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


def _codec(event_type: type[E], schema_name: str) -> Codec[E]:
    """The codec of ``event_type``: field for field, by name (bundled schema ``schema_name``)."""
    plan = _fields_of(event_type)
    full_name = f"featurestore.v1.{event_type.__name__}"
    return Codec(event_type, schema_name, full_name, _to_wire(plan), _from_wire(event_type, plan))


TRADE_CODEC = _codec(Trade, "trade")
QUOTE_CODEC = _codec(Quote, "quote")
METRIC_CODEC = _codec(Metric, "metric")
ANOMALY_CODEC = _codec(Anomaly, "anomaly")
PREDICTION_CODEC = _codec(PredictionLog, "prediction_log")
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
