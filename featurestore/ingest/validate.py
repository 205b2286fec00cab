r"""Validation of source records into events, with a stated reason for every rejection.

Rules, in the order they are checked (the first that fails is the reason). Every kind starts
with the source's own rejection (``suspicious``, ``unparsable``, ``one_sided``, ...), then
``missing_field`` for an absent required field and ``wrong_type`` for a field of the wrong
type (a number that is not one, a bool, ...), checked field by field; only then the rules of
the tables below, in their order, over all the fields.

Numbers are Python ``int``, ``float`` or ``decimal.Decimal`` values (an exact decimal, as a
Parquet ``decimal128`` column gives, is converted to a float as CSV text is). A size is an
``int`` or an integral ``Decimal``.

Trades (:func:`validate_trade`; required ``symbol``, ``price``, ``size``, ``event_time``,
``trade_id``) and quotes (:func:`validate_quote`; required ``symbol``, ``event_time``,
``bid_price``, ``bid_size``, ``ask_price``, ``ask_size``, ``quote_id``):

==========================  ==================================================================
reason code                 rule
==========================  ==================================================================
``bad_symbol``              not ``^[A-Za-z][A-Za-z0-9.\\-]{0,15}$`` in ASCII once stripped;
                            a valid symbol is upper-cased
``not_finite``              a price is NaN or infinite
``out_of_range``            a price beyond a float's range as given (``1e400``), or a size
                            above 9,223,372,036,854,775,807 (the schema's 64-bit long)
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
``out_of_range``            the value is beyond a float's range as given
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
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal

from featurestore.errors import ValidationError
from featurestore.events.model import Metric
from featurestore.events.model import Quote
from featurestore.events.model import Trade
from featurestore.ingest.sources.base import SourceRecord

__all__ = [
    "MAX_ENTITY_LENGTH",
    "MAX_SIZE",
    "SYMBOL_PATTERN",
    "RecordRejectedError",
    "validate_metric",
    "validate_quote",
    "validate_trade",
]

SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,15}$")
"""A ticker once upper-cased; only ASCII text is matched (a dotless i is not an ``I``)."""
MAX_ENTITY_LENGTH = 256
MAX_SIZE = 2**63 - 1
"""The largest size the event schemas hold (an Avro ``long``)."""
Fields = Mapping[str, object]
Number = int | float | Decimal
_MAX_SHOWN = 40


class RecordRejectedError(ValidationError):
    """A source record that cannot become an event; :attr:`reason` is ``<code>: <detail>``."""

    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        """Reject with a reason ``<code>: <detail>``, naming the field when one is to blame."""
        super().__init__(f"{code}: {detail}", field=field)
        self.code = code
        self.reason = f"{code}: {detail}"


def _shown(value: object) -> str:
    """A value as a reason shows it: short, and without Python's internals."""
    if isinstance(value, str):
        if len(value) <= _MAX_SHOWN:
            return repr(value)
        return f"{value[:_MAX_SHOWN]!r}... ({len(value)} characters)"
    if isinstance(value, bool):
        return f"the flag {value}"
    if isinstance(value, int):
        if value.bit_length() > 4000:  # str() refuses past 4300 digits
            return f"{'-' if value < 0 else ''}~2**{value.bit_length()}"
        text = str(value)
        return text if len(text) <= _MAX_SHOWN else f"{text[:12]}...({len(text)} characters)"
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= _MAX_SHOWN else f"{value:.6e}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return f"the timestamp {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, Mapping | list | tuple):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a value of type {type(value).__name__}"


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
        raise RecordRejectedError(
            "wrong_type", f"{name} must be text, got {_shown(value)}", field=name
        )
    return value


def _id(fields: Fields, name: str) -> str:
    value = _text(fields, name, "")
    if not value:
        raise RecordRejectedError("missing_field", f"{name} is empty", field=name)
    return value


def _symbol(symbol: str) -> str:
    """Rule ``bad_symbol``: ASCII text of the ticker pattern, then upper-cased."""
    stripped = symbol.strip()
    if not stripped.isascii() or not SYMBOL_PATTERN.fullmatch(stripped.upper()):
        raise RecordRejectedError(
            "bad_symbol",
            f"{_shown(stripped)} is not a ticker (an ASCII letter, then up to 15 ASCII"
            " letters, digits, '.' or '-')",
            field="symbol",
        )
    return stripped.upper()


def _number(fields: Fields, name: str) -> Number:
    """Type check of a number field (``wrong_type``)."""
    value = fields[name]
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise RecordRejectedError(
            "wrong_type", f"{name} must be a number, got {_shown(value)}", field=name
        )
    return value


def _finite(name: str, value: Number) -> None:
    """Rule ``not_finite``."""
    if isinstance(value, int):
        return
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite:
        raise RecordRejectedError("not_finite", f"{name} is {_shown(value)}", field=name)


def _as_float(name: str, value: Number) -> float:
    """Rule ``out_of_range`` of a finite number: it must fit a float as given.

    A huge ``int`` or ``Decimal`` would become infinite, a tiny ``Decimal`` zero.
    """
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range
        number = math.inf
    if not math.isfinite(number) or (number == 0 and value != 0):
        raise RecordRejectedError(
            "out_of_range",
            f"{name} is {_shown(value)}, beyond the range of a float (about 1e-308 to 1.8e308)",
            field=name,
        )
    return number


def _positive(name: str, price: float) -> float:
    """Rule ``non_positive_price``."""
    if price <= 0:
        raise RecordRejectedError("non_positive_price", f"{name} {price} <= 0", field=name)
    return price


def _integer(fields: Fields, name: str) -> int:
    """Type check of a size (``wrong_type``): an int, or an integral Decimal."""
    value = fields[name]
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if abs(value) > MAX_SIZE:  # out of range anyway: no need to build a huge int
            return MAX_SIZE + 1 if value > 0 else -MAX_SIZE - 1
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordRejectedError(
            "wrong_type", f"{name} must be an integer, got {_shown(value)}", field=name
        )
    return value


def _fits_long(fields: Fields, name: str, size: int) -> None:
    """Rule ``out_of_range`` of a size: at most :data:`MAX_SIZE`."""
    if size > MAX_SIZE:
        raise RecordRejectedError(
            "out_of_range",
            f"{name} is {_shown(fields[name])}, above the largest size {MAX_SIZE} (64-bit)",
            field=name,
        )


def _non_negative(fields: Fields, name: str, size: int) -> None:
    """Rule ``negative_size``."""
    if size < 0:
        raise RecordRejectedError("negative_size", f"{name} {_shown(fields[name])} < 0", field=name)


def _timestamp(fields: Fields) -> datetime:
    """Type check of the event time (``wrong_type``)."""
    value = fields["event_time"]
    if not isinstance(value, datetime):
        raise RecordRejectedError(
            "wrong_type",
            f"event_time must be a timestamp with a time zone, got {_shown(value)}",
            field="event_time",
        )
    return value


def _in_utc(value: datetime) -> datetime:
    """Rules ``naive_time`` then ``out_of_range`` of the event time."""
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
            "wrong_type", f"{name} must be text codes, got {_shown(codes)}", field=name
        )
    return tuple(codes)


def validate_trade(record: SourceRecord) -> Trade:
    """Turn a source record into a trade, or raise :class:`RecordRejectedError` saying why not."""
    fields = _checked_fields(record, ("symbol", "price", "size", "event_time", "trade_id"))
    symbol = _text(fields, "symbol", "")
    given_price = _number(fields, "price")
    size = _integer(fields, "size")
    event_time = _timestamp(fields)
    exchange = _text(fields, "exchange", "")
    conditions = _codes(fields, "conditions")
    trade_id = _id(fields, "trade_id")
    currency = _text(fields, "currency", "USD")

    symbol = _symbol(symbol)
    _finite("price", given_price)
    price = _as_float("price", given_price)
    _fits_long(fields, "size", size)
    _positive("price", price)
    _non_negative(fields, "size", size)
    return Trade(
        symbol=symbol,
        price=price,
        size=size,
        event_time=_in_utc(event_time),
        exchange=exchange,
        trade_id=trade_id,
        conditions=conditions,
        currency=currency,
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
    symbol = _text(fields, "symbol", "")
    given_bid = _number(fields, "bid_price")
    given_ask = _number(fields, "ask_price")
    bid_size = _integer(fields, "bid_size")
    ask_size = _integer(fields, "ask_size")
    event_time = _timestamp(fields)
    exchange = fields.get("exchange")
    if exchange is not None and not isinstance(exchange, str):
        raise RecordRejectedError(
            "wrong_type", f"exchange must be text, got {_shown(exchange)}", field="exchange"
        )
    conditions = _codes(fields, "conditions")
    quote_id = _id(fields, "quote_id")
    currency = _text(fields, "currency", "USD")

    symbol = _symbol(symbol)
    _finite("bid_price", given_bid)
    _finite("ask_price", given_ask)
    bid_price = _as_float("bid_price", given_bid)
    ask_price = _as_float("ask_price", given_ask)
    _fits_long(fields, "bid_size", bid_size)
    _fits_long(fields, "ask_size", ask_size)
    _positive("bid_price", bid_price)
    _positive("ask_price", ask_price)
    _non_negative(fields, "bid_size", bid_size)
    _non_negative(fields, "ask_size", ask_size)
    if bid_price > ask_price:
        raise RecordRejectedError(
            "crossed", f"bid_price {bid_price} > ask_price {ask_price}", field="bid_price"
        )
    return Quote(
        symbol=symbol,
        event_time=_in_utc(event_time),
        bid_price=bid_price,
        bid_size=bid_size,
        ask_price=ask_price,
        ask_size=ask_size,
        quote_id=quote_id,
        exchange=exchange or None,
        conditions=conditions,
        currency=currency,
        source=record.source,
    )


def _tags(fields: Fields) -> dict[str, str]:
    tags = fields.get("tags", {})
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise RecordRejectedError(
            "wrong_type", f"tags must map text to text, got {_shown(tags)}", field="tags"
        )
    return dict(tags)


def validate_metric(record: SourceRecord) -> Metric:
    """Turn a source record into a metric, or raise :class:`RecordRejectedError` saying why not."""
    fields = _checked_fields(record, ("entity", "event_time", "value", "metric_id"))
    entity = _text(fields, "entity", "").strip()
    given_value = _number(fields, "value")
    event_time = _timestamp(fields)
    name = _text(fields, "name", "value").strip()
    tags = _tags(fields)
    metric_id = _id(fields, "metric_id")

    if not entity or len(entity) > MAX_ENTITY_LENGTH:
        raise RecordRejectedError(
            "bad_entity",
            f"entity {entity[:40]!r} must be 1-{MAX_ENTITY_LENGTH} characters",
            field="entity",
        )
    _finite("value", given_value)
    value = _as_float("value", given_value)
    event_time = _in_utc(event_time)
    if not name:
        raise RecordRejectedError("bad_name", "the metric's name is empty", field="name")
    return Metric(
        entity=entity,
        event_time=event_time,
        value=value,
        metric_id=metric_id,
        name=name,
        tags=tags,
        source=record.source,
    )
