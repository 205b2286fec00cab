"""Polygon.io / Massive trade and quote records, as the WebSocket and REST APIs send them.

The two APIs name the same fields differently:

=================  ====================  ===========================  =====================
what               WebSocket (``T``)     REST ``/v3/trades``          event field
=================  ====================  ===========================  =====================
ticker             ``sym``               (in the path)                ``symbol``
trade id           ``i``                 ``id``                       part of ``trade_id``
exchange id        ``x``                 ``exchange``                 ``exchange`` (text)
TRF id             ``trfi``              ``trf_id``                   part of ``trade_id``
price              ``p``                 ``price``                    ``price``
size               ``s``                 ``size``                     ``size``
conditions         ``c``                 ``conditions``               ``conditions`` (text)
SIP time           ``t`` (Unix ms)       ``sip_timestamp`` (Unix ns)  ``event_time``
sequence number    ``q``                 ``sequence_number``          (quotes: ``quote_id``)
=================  ====================  ===========================  =====================

Quotes (WebSocket ``Q``: ``bx bp bs ax ap as c t q``; REST ``/v3/quotes``: ``bid_exchange
bid_price bid_size ask_exchange ask_price ask_size conditions sip_timestamp sequence_number``).

Event ids, stated rule. The vendor documents a trade id as unique per ticker, exchange and TRF,
and a sequence number as unique per ticker and day; both APIs carry the same values. So

- a trade's id is ``polygon:<SYMBOL>:<New York date>:<exchange>:<trf id or ->:<trade id>``,
- a quote's id is ``polygon:<SYMBOL>:<New York date>:q<sequence number>`` (quotes have no id),

the same string whichever API delivered the record: a trade that arrives on the WebSocket and
again in a REST backfill has one id, and the feed drops the second copy before it is sent
(:mod:`featurestore.ingest.vendor.dedupe`). The processors deduplicate by the same id too, but
only within their open minutes; the log itself is kept free of copies here.

Event times: the WebSocket gives milliseconds, REST nanoseconds (kept to the microsecond, the
events' precision); the same trade may therefore differ below the millisecond between the two,
and the id, not the time, tells them apart. A record that cannot be read (a missing ticker, a
time that is not a number) becomes a source record with ``unparsable: ...`` and goes to the
dead-letter topic with its raw JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord

__all__ = [
    "REST_SOURCE",
    "WS_SOURCE",
    "quote_id",
    "rest_quote",
    "rest_trade",
    "trade_id",
    "ws_record",
]

NEW_YORK = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WS_SOURCE = "polygon-ws"
"""The ``source`` of records that came over the WebSocket (lineage and dead-letter header)."""
REST_SOURCE = "polygon-rest"
"""The ``source`` of records that came from a REST backfill."""

Raw = Mapping[str, object]


def _ny_date(event_time: datetime) -> str:
    return event_time.astimezone(NEW_YORK).strftime("%Y%m%d")


def trade_id(
    symbol: str, event_time: datetime, exchange: object, trf: object, vendor_id: object
) -> str:
    """The deterministic event id of one vendor trade (the same from the WebSocket and REST)."""
    trf_part = "-" if trf in (None, "") else str(trf)
    return f"polygon:{symbol.upper()}:{_ny_date(event_time)}:{exchange}:{trf_part}:{vendor_id}"


def quote_id(symbol: str, event_time: datetime, sequence: object) -> str:
    """The deterministic event id of one vendor quote: its sequence number within the day."""
    return f"polygon:{symbol.upper()}:{_ny_date(event_time)}:q{sequence}"


def _from_ms(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"timestamp {value!r} is not a number")
    return EPOCH + timedelta(milliseconds=int(value))


def _from_ns(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"sip_timestamp {value!r} is not an integer")
    return EPOCH + timedelta(microseconds=value // 1000)


def _codes(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"conditions {value!r} are not a list")
    return tuple(str(code) for code in value)


def _exchange_text(value: object) -> str:
    return "" if value is None else str(value)


def _record(
    source: str,
    line: int,
    kind: RecordKind,
    fields: dict[str, object],
    raw: Raw,
    reject: str | None,
) -> SourceRecord:
    data = json.dumps(raw, separators=(",", ":"), sort_keys=True, default=str).encode()
    return SourceRecord(source, line, fields, data, reject, kind)


def _trade_fields(
    symbol: object,
    when: datetime,
    vendor_id: object,
    exchange: object,
    trf: object,
    price: object,
    size: object,
    conditions: object,
) -> dict[str, object]:
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"ticker {symbol!r} is missing")
    if vendor_id in (None, ""):
        raise ValueError("the trade has no id")
    return {
        "symbol": symbol,
        "event_time": when,
        "trade_id": trade_id(symbol, when, exchange, trf, vendor_id),
        "exchange": _exchange_text(exchange),
        "price": price,
        "size": size,
        "conditions": _codes(conditions),
        "currency": "USD",
    }


def _quote_fields(
    symbol: object,
    when: datetime,
    sequence: object,
    bid: tuple[object, object, object],
    ask: tuple[object, object, object],
    conditions: object,
) -> dict[str, object]:
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"ticker {symbol!r} is missing")
    if sequence is None:
        raise ValueError("the quote has no sequence number")
    bid_x, bid_p, bid_s = bid
    ask_x, ask_p, ask_s = ask
    venues = None if bid_x is None and ask_x is None else f"{bid_x}/{ask_x}"
    return {
        "symbol": symbol,
        "event_time": when,
        "quote_id": quote_id(symbol, when, sequence),
        "exchange": venues,
        "bid_price": bid_p,
        "bid_size": bid_s,
        "ask_price": ask_p,
        "ask_size": ask_s,
        "conditions": _codes(conditions),
        "currency": "USD",
    }


def ws_record(message: Raw, line: int) -> SourceRecord | None:
    """A source record of one WebSocket event (``ev`` ``T`` or ``Q``); None for other events.

    Status messages and aggregates are not records of the log: the stream handles them.
    """
    ev = message.get("ev")
    if ev not in ("T", "Q"):
        return None
    kind: RecordKind = "trade" if ev == "T" else "quote"
    symbol = message.get("sym")
    try:
        when = _from_ms(message.get("t"))
        if kind == "trade":
            fields = _trade_fields(
                symbol, when, message.get("i"), message.get("x"), message.get("trfi"),
                message.get("p"), message.get("s"), message.get("c"),
            )  # fmt: skip
        else:
            fields = _quote_fields(
                symbol, when, message.get("q"),
                (message.get("bx"), message.get("bp"), message.get("bs")),
                (message.get("ax"), message.get("ap"), message.get("as")),
                message.get("c"),
            )  # fmt: skip
    except (ValueError, OverflowError) as exc:
        partial: dict[str, object] = {"symbol": symbol} if isinstance(symbol, str) else {}
        return _record(WS_SOURCE, line, kind, partial, message, f"unparsable: {exc}")
    return _record(WS_SOURCE, line, kind, fields, message, None)


def rest_trade(symbol: str, result: Raw, line: int) -> SourceRecord:
    """A source record of one result of ``GET /v3/trades/{ticker}``."""
    try:
        when = _from_ns(result.get("sip_timestamp"))
        fields = _trade_fields(
            symbol, when, result.get("id"), result.get("exchange"), result.get("trf_id"),
            result.get("price"), result.get("size"), result.get("conditions"),
        )  # fmt: skip
    except (ValueError, OverflowError) as exc:
        return _record(REST_SOURCE, line, "trade", {"symbol": symbol}, result, f"unparsable: {exc}")
    return _record(REST_SOURCE, line, "trade", fields, result, None)


def rest_quote(symbol: str, result: Raw, line: int) -> SourceRecord:
    """A source record of one result of ``GET /v3/quotes/{ticker}``."""
    try:
        when = _from_ns(result.get("sip_timestamp"))
        fields = _quote_fields(
            symbol, when, result.get("sequence_number"),
            (result.get("bid_exchange"), result.get("bid_price"), result.get("bid_size")),
            (result.get("ask_exchange"), result.get("ask_price"), result.get("ask_size")),
            result.get("conditions"),
        )  # fmt: skip
    except (ValueError, OverflowError) as exc:
        return _record(REST_SOURCE, line, "quote", {"symbol": symbol}, result, f"unparsable: {exc}")
    return _record(REST_SOURCE, line, "quote", fields, result, None)
