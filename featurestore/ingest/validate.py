r"""Validation of source records into trades, with a stated reason for every rejection.

Rules, in the order they are checked (the first that fails is the reason):

==========================  ==================================================================
reason code                 rule
==========================  ==================================================================
(source's own)              the source rejected the row (``suspicious``, ``unparsable``)
``missing_field``           ``symbol``, ``price``, ``size``, ``event_time`` or ``trade_id`` absent
``wrong_type``              a field of the wrong type (a number that is not one, a bool, ...)
``bad_symbol``              after upper-casing, not ``^[A-Z][A-Z0-9.\\-]{0,15}$``
``not_finite``              price is NaN or infinite
``non_positive_price``      price <= 0
``negative_size``           size < 0
``naive_time``              event time without a time zone
==========================  ==================================================================

A rejected record goes to the dead-letter topic with ``<code>: <detail>`` in the
``x-dead-letter-reason`` header; nothing is dropped.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from featurestore.errors import ValidationError
from featurestore.events.model import Trade
from featurestore.ingest.sources.base import SourceRecord

__all__ = ["SYMBOL_PATTERN", "TradeRejectedError", "validate_trade"]

SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,15}$")
_REQUIRED = ("symbol", "price", "size", "event_time", "trade_id")


class TradeRejectedError(ValidationError):
    """A source record that cannot become a trade; :attr:`reason` is ``<code>: <detail>``."""

    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"{code}: {detail}", field=field)
        self.code = code
        self.reason = f"{code}: {detail}"


def _text(fields: dict[str, object], name: str, default: str) -> str:
    value = fields.get(name, default)
    if not isinstance(value, str):
        raise TradeRejectedError("wrong_type", f"{name} must be text, got {value!r}", field=name)
    return value


def validate_trade(record: SourceRecord) -> Trade:
    """Turn a source record into a trade, or raise :class:`TradeRejectedError` saying why not."""
    if record.reject is not None:
        code, _, detail = record.reject.partition(": ")
        raise TradeRejectedError(code, detail or code)
    fields = dict(record.fields)
    for name in _REQUIRED:
        if name not in fields or fields[name] is None:
            raise TradeRejectedError("missing_field", f"{name} is missing", field=name)

    symbol = _text(fields, "symbol", "").strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise TradeRejectedError("bad_symbol", f"{symbol!r} is not a ticker", field="symbol")

    price = fields["price"]
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise TradeRejectedError(
            "wrong_type", f"price must be a number, got {price!r}", field="price"
        )
    price = float(price)
    if not math.isfinite(price):
        raise TradeRejectedError("not_finite", f"price is {price}", field="price")
    if price <= 0:
        raise TradeRejectedError("non_positive_price", f"price {price} <= 0", field="price")

    size = fields["size"]
    if isinstance(size, bool) or not isinstance(size, int):
        raise TradeRejectedError(
            "wrong_type", f"size must be an integer, got {size!r}", field="size"
        )
    if size < 0:
        raise TradeRejectedError("negative_size", f"size {size} < 0", field="size")

    event_time = fields["event_time"]
    if not isinstance(event_time, datetime):
        raise TradeRejectedError(
            "wrong_type", f"event_time must be a timestamp, got {event_time!r}", field="event_time"
        )
    if event_time.tzinfo is None:
        raise TradeRejectedError("naive_time", "event_time has no time zone", field="event_time")

    conditions = fields.get("conditions", ())
    if not isinstance(conditions, tuple | list) or not all(isinstance(c, str) for c in conditions):
        raise TradeRejectedError(
            "wrong_type", f"conditions must be text codes, got {conditions!r}", field="conditions"
        )
    trade_id = _text(fields, "trade_id", "")
    if not trade_id:
        raise TradeRejectedError("missing_field", "trade_id is empty", field="trade_id")
    return Trade(
        symbol=symbol,
        price=price,
        size=size,
        event_time=event_time.astimezone(UTC),
        exchange=_text(fields, "exchange", ""),
        trade_id=trade_id,
        conditions=tuple(conditions),
        currency=_text(fields, "currency", "USD"),
        source=record.source,
    )
