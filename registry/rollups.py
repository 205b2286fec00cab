"""OHLCV rollups: closed 1-minute bars, and 5-minute and 1-hour bars rolled up from them.

``ohlcv_1m`` has a row at each minute's end (``bars_1m`` has one as of every trade);
``ohlcv_5m`` aggregates its rows and ``ohlcv_1h`` aggregates ``ohlcv_5m``'s (chained views,
``README.md``). A row at B covers the trades of ``[B - bar, B)``: open is the first trade's
price, close the last one's, volume and trade count the sums, VWAP the notional over the
volume. A bar without trades has a volume and count of 0 and null prices (the aggregates skip
the empty minutes' nulls, so a 5-minute bar opens at its first traded minute's open). The
first empty bar after a traded one has a row; the next empty ones have none, so a row is valid
until the next (no TTL): read as of any time t, a view gives the bar that ended last at or
before t.

Rollups are kept for a bounded time offline (the ``retention`` of their tables): the log keeps every
trade, so a dropped range is rebuilt by ``featurestore processors backfill``.
"""

from __future__ import annotations

from datetime import timedelta

from entities import symbol
from feast import Field
from feast import StreamFeatureView
from feast.aggregation import Aggregation
from feast.types import Float64
from feast.types import Int64
from feast.types import String
from trades import trades_source

_OHLCV = {
    "open": ("first", "the price of the bar's first trade"),
    "high": ("max", "the highest trade price of the bar"),
    "low": ("min", "the lowest trade price of the bar"),
    "close": ("last", "the price of the bar's last trade"),
    "volume": ("sum", "the traded quantity (sum of size) of the bar"),
    "trade_count": ("count", "the number of trades of the bar"),
    "notional": ("sum", "the traded value (sum of price * size) of the bar"),
}
"""feature -> (function over the trades, description)."""

_ROLLED_UP = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
              "trade_count": "sum", "notional": "sum"}  # fmt: skip
"""feature -> the function that rolls the smaller bars' feature up into a larger bar."""

_TRADE_COLUMN = {"volume": "size", "notional": "notional"}
"""The trade field each 1-minute feature reads (price for the others)."""


def _schema(bar: str) -> list[Field]:
    fields = [Field(name="symbol", dtype=String)]
    for name, (_, text) in _OHLCV.items():
        kind = Int64 if name == "trade_count" else Float64
        fields.append(Field(name=name, dtype=kind, description=f"{text} ({bar})"))
    fields.append(Field(name="vwap", dtype=Float64, description=f"notional / volume ({bar})"))
    return fields


def _tags(upstream: str | None) -> dict[str, str]:
    return {
        "featurestore.rows": "window_end",
        "featurestore.derived.vwap": "notional / volume",
        "featurestore.features": ",".join([*_OHLCV, "vwap"]),
        **({"featurestore.source_view": upstream} if upstream else {}),
    }


def _bars(
    window: timedelta, column_of: dict[str, str], function_of: dict[str, str]
) -> list[Aggregation]:
    return [
        Aggregation(
            column=column_of[name],
            function=function_of[name],
            time_window=window,
            slide_interval=window,
            name=name,
        )
        for name in _OHLCV
    ]


ohlcv_1m = StreamFeatureView(
    name="ohlcv_1m",
    source=trades_source("ohlcv_1m", retention="30d"),
    entities=[symbol],
    ttl=timedelta(0),
    schema=_schema("the minute ending at the row's time"),
    aggregations=_bars(
        timedelta(minutes=1),
        {name: _TRADE_COLUMN.get(name, "price") for name in _OHLCV},
        {name: function for name, (function, _) in _OHLCV.items()},
    ),
    timestamp_field="event_time",
    tiling_hop_size=timedelta(minutes=1),
    tags=_tags(None),
    description="closed 1-minute OHLCV bars per symbol, a row at each minute's end",
)

ohlcv_5m = StreamFeatureView(
    name="ohlcv_5m",
    source=trades_source("ohlcv_5m", retention="90d"),  # the upstream's stream, own table
    entities=[symbol],
    ttl=timedelta(0),
    schema=_schema("the 5 minutes ending at the row's time"),
    aggregations=_bars(timedelta(minutes=5), {n: n for n in _OHLCV}, _ROLLED_UP),
    timestamp_field="event_time",
    tiling_hop_size=timedelta(minutes=1),
    tags=_tags("ohlcv_1m"),
    description="5-minute OHLCV bars per symbol, rolled up from ohlcv_1m at each bar's end",
)

ohlcv_1h = StreamFeatureView(
    name="ohlcv_1h",
    source=trades_source("ohlcv_1h", retention="365d"),
    entities=[symbol],
    ttl=timedelta(0),
    schema=_schema("the hour ending at the row's time"),
    aggregations=_bars(timedelta(hours=1), {n: n for n in _OHLCV}, _ROLLED_UP),
    timestamp_field="event_time",
    tiling_hop_size=timedelta(minutes=1),  # the stream's tile
    tags=_tags("ohlcv_5m"),
    description="1-hour OHLCV bars per symbol, rolled up from ohlcv_5m at each bar's end",
)
