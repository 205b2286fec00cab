r"""Validation of source records into events, with a stated reason for every rejection.

Rules, in the order they are checked (the first that fails is the reason). Every kind starts
with the source's own rejection (``suspicious``, ``unparsable``, ``one_sided``, ...), then
``missing_field`` for an absent required field and ``wrong_type`` for a field of the wrong
type (a number that is not one, a bool, ...), checked field by field.

Trades (:func:`validate_trade`; required ``symbol``, ``price``, ``size``, ``event_time``,
``trade_id``) and quotes (:func:`validate_quote`; required ``symbol``, ``event_time``,
``bid_price``, ``bid_size``, ``ask_price``, ``ask_size``, ``quote_id``):

==========================  ==================================================================
reason code                 rule
==========================  ==================================================================
``bad_symbol``              after upper-casing, not ``^[A-Z][A-Z0-9.\\-]{0,15}$``
``not_finite``              a price is NaN or infinite
``non_positive_price``      a price <= 0
``negative_size``           a size < 0
``crossed``                 (quotes) bid price > ask price; a locked book (equal) is valid
``naive_time``              event time without a time zone
``out_of_range``            event time outside years 1-9999 once in UTC
==========================  ==================================================================

Metrics (:func:`validate_metric`; required ``entity``, ``event_time``, ``value``,
``metric_id``):

==========================  ==================================================================
``bad_entity``              after stripping, empty or longer than 256 characters
``not_finite``              the value is NaN or infinite
``naive_time``              event time without a time zone
``out_of_range``            event time outside years 1-9999 once in UTC
``bad_name``                the metric's name is empty
==========================  ==================================================================

A rejected record goes to the dead-letter topic with ``<code>: <detail>`` in the
``x-dead-letter-reason`` header; nothing is dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from featurestore.errors import ValidationError
from featurestore.events.model import Metric, Quote, Trade
from featurestore.ingest.sources.base import SourceRecord

__all__ = [
    "MAX_ENTITY_LENGTH",
    "SYMBOL_PATTERN",
    "RecordRejectedError",
    "validate_metric",
    "validate_quote",
    "validate_trade",
]

SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,15}$")
MAX_ENTITY_LENGTH = 256
Fields = Mapping[str, object]


class RecordRejectedError(ValidationError):
    """A source record that cannot become an event; :attr:`reason` is ``<code>: <detail>``."""

    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        """Reject with a reason ``<code>: <detail>``, naming the field when one is to blame."""
        super().__init__(f"{code}: {detail}", field=field)
        self.code = code
        self.reason = f"{code}: {detail}"


def _checked_fields(record: SourceRecord, required: Sequence[str]) -> Fields:
    """Raise the source's own rejection, or ``missing_field``; return the fields."""
    if record.reject is not None:
        code, _, detail = record.reject.partition(": ")
        raise RecordRejectedError(code, detail or code)
    fields = record.fields
    for name in required:
        if fields.get(name) is None:
            raise RecordRejectedError("missing_field", f"{name} is missing", field=name)
    return fields


def _text(fields: Fields, name: str, default: str) -> str:
    value = fields.get(name, default)
    if not isinstance(value, str):
        raise RecordRejectedError("wrong_type", f"{name} must be text, got {value!r}", field=name)
    return value


def _id(fields: Fields, name: str) -> str:
    value = _text(fields, name, "")
    if not value:
        raise RecordRejectedError("missing_field", f"{name} is empty", field=name)
    return value


def _symbol(fields: Fields) -> str:
    symbol = _text(fields, "symbol", "").strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise RecordRejectedError("bad_symbol", f"{symbol!r} is not a ticker", field="symbol")
    return symbol


def _number(fields: Fields, name: str) -> float:
    value = fields[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordRejectedError(
            "wrong_type", f"{name} must be a number, got {value!r}", field=name
        )
    number = float(value)
    if not math.isfinite(number):
        raise RecordRejectedError("not_finite", f"{name} is {number}", field=name)
    return number


def _price(fields: Fields, name: str) -> float:
    price = _number(fields, name)
    if price <= 0:
        raise RecordRejectedError("non_positive_price", f"{name} {price} <= 0", field=name)
    return price


def _size(fields: Fields, name: str) -> int:
    size = fields[name]
    if isinstance(size, bool) or not isinstance(size, int):
        raise RecordRejectedError(
            "wrong_type", f"{name} must be an integer, got {size!r}", field=name
        )
    if size < 0:
        raise RecordRejectedError("negative_size", f"{name} {size} < 0", field=name)
    return size


def _event_time(fields: Fields) -> datetime:
    value = fields["event_time"]
    if not isinstance(value, datetime):
        raise RecordRejectedError(
            "wrong_type", f"event_time must be a timestamp, got {value!r}", field="event_time"
        )
    if value.tzinfo is None:
        raise RecordRejectedError("naive_time", "event_time has no time zone", field="event_time")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # year 1 east of UTC, year 9999 west of it
        raise RecordRejectedError(
            "out_of_range",
            f"event_time {value.isoformat()} is outside years 1-9999 in UTC",
            field="event_time",
        ) from exc


def _codes(fields: Fields, name: str) -> tuple[str, ...]:
    codes = fields.get(name, ())
    if not isinstance(codes, tuple | list) or not all(isinstance(c, str) for c in codes):
        raise RecordRejectedError(
            "wrong_type", f"{name} must be text codes, got {codes!r}", field=name
        )
    return tuple(codes)


def validate_trade(record: SourceRecord) -> Trade:
    """Turn a source record into a trade, or raise :class:`RecordRejectedError` saying why not."""
    fields = _checked_fields(record, ("symbol", "price", "size", "event_time", "trade_id"))
    symbol = _symbol(fields)
    price = _price(fields, "price")
    size = _size(fields, "size")
    event_time = _event_time(fields)
    conditions = _codes(fields, "conditions")
    trade_id = _id(fields, "trade_id")
    return Trade(
        symbol=symbol,
        price=price,
        size=size,
        event_time=event_time,
        exchange=_text(fields, "exchange", ""),
        trade_id=trade_id,
        conditions=conditions,
        currency=_text(fields, "currency", "USD"),
        source=record.source,
    )


_QUOTE_REQUIRED = (
    "symbol",
    "event_time",
    "bid_price",
    "bid_size",
    "ask_price",
    "ask_size",
    "quote_id",
)


def validate_quote(record: SourceRecord) -> Quote:
    """Turn a source record into a quote, or raise :class:`RecordRejectedError` saying why not."""
    fields = _checked_fields(record, _QUOTE_REQUIRED)
    symbol = _symbol(fields)
    bid_price = _price(fields, "bid_price")
    ask_price = _price(fields, "ask_price")
    bid_size = _size(fields, "bid_size")
    ask_size = _size(fields, "ask_size")
    if bid_price > ask_price:
        raise RecordRejectedError(
            "crossed", f"bid_price {bid_price} > ask_price {ask_price}", field="bid_price"
        )
    event_time = _event_time(fields)
    exchange = fields.get("exchange")
    if exchange is not None and not isinstance(exchange, str):
        raise RecordRejectedError(
            "wrong_type", f"exchange must be text, got {exchange!r}", field="exchange"
        )
    conditions = _codes(fields, "conditions")
    quote_id = _id(fields, "quote_id")
    return Quote(
        symbol=symbol,
        event_time=event_time,
        bid_price=bid_price,
        bid_size=bid_size,
        ask_price=ask_price,
        ask_size=ask_size,
        quote_id=quote_id,
        exchange=exchange or None,
        conditions=conditions,
        currency=_text(fields, "currency", "USD"),
        source=record.source,
    )


def _tags(fields: Fields) -> dict[str, str]:
    tags = fields.get("tags", {})
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise RecordRejectedError(
            "wrong_type", f"tags must map text to text, got {tags!r}", field="tags"
        )
    return dict(tags)


def validate_metric(record: SourceRecord) -> Metric:
    """Turn a source record into a metric, or raise :class:`RecordRejectedError` saying why not."""
    fields = _checked_fields(record, ("entity", "event_time", "value", "metric_id"))
    entity = _text(fields, "entity", "").strip()
    if not entity or len(entity) > MAX_ENTITY_LENGTH:
        raise RecordRejectedError(
            "bad_entity",
            f"entity {entity[:40]!r} must be 1-{MAX_ENTITY_LENGTH} characters",
            field="entity",
        )
    value = _number(fields, "value")
    event_time = _event_time(fields)
    name = _text(fields, "name", "value").strip()
    if not name:
        raise RecordRejectedError("bad_name", "the metric's name is empty", field="name")
    tags = _tags(fields)
    metric_id = _id(fields, "metric_id")
    return Metric(
        entity=entity,
        event_time=event_time,
        value=value,
        metric_id=metric_id,
        name=name,
        tags=tags,
        source=record.source,
    )
