"""The trades topic and the views computed from it: 1-minute bars and clock-time rolling windows.

Every view reads the topic through its own ``KafkaSource`` (:func:`trades_source`), whose
``batch_source`` is the view's offline table; the ``featurestore.*`` tags carry what Feast has
no field for. Both are explained in ``README.md``.
"""

from __future__ import annotations

import json

from entities import symbol
from feast import Field
from feast import KafkaSource
from feast.types import Float64
from feast.types import Int64
from feast.types import String
from streams import SETTINGS
from streams import minute_view
from streams import per_minute
from streams import stream_source

TRADE_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Trade",
        "namespace": "featurestore.v1",
        "fields": [
            {"name": "symbol", "type": "string"},
            {"name": "price", "type": "double"},
            {"name": "size", "type": "long"},
            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "trade_id", "type": "string"},
        ],
    }
)
"""What the views read of a Trade (``featurestore/events/schemas/trade.avsc`` has more)."""


def trades_source(view: str, retention: str | None = None) -> KafkaSource:
    """The trades topic as the source of ``view``, whose offline table has the view's name.

    ``retention``: how long that table keeps rows (:func:`streams.stream_source`).
    """
    return stream_source(
        "trades",
        SETTINGS.topics.trades,
        view,
        TRADE_SCHEMA,
        entity_field="symbol",
        id_field="trade_id",
        description="executed trades, Avro with Confluent framing, keyed by symbol",
        columns={
            "notional": "price * size",
            "log_return": "ln(price / prev(price))",
        },
        retention=retention,
    )


_MINUTE = "in the minute containing the row's time, up to that time"

BARS_SCHEMA = [
    Field(name="symbol", dtype=String),
    Field(name="open", dtype=Float64, description=f"price of the first trade {_MINUTE}"),
    Field(name="high", dtype=Float64, description=f"highest trade price {_MINUTE}"),
    Field(name="low", dtype=Float64, description=f"lowest trade price {_MINUTE}"),
    Field(name="close", dtype=Float64, description=f"price of the last trade {_MINUTE}"),
    Field(name="volume", dtype=Float64, description=f"traded quantity (sum of size) {_MINUTE}"),
    Field(name="trade_count", dtype=Int64, description=f"number of trades {_MINUTE}"),
    Field(name="avg_trade_size", dtype=Float64, description=f"mean trade size {_MINUTE}"),
    Field(
        name="vwap",
        dtype=Float64,
        description=f"volume-weighted average price {_MINUTE}: notional / volume",
    ),
    Field(
        name="notional", dtype=Float64, description=f"traded value (sum of price * size) {_MINUTE}"
    ),
]

bars_1m = minute_view(
    "bars_1m",
    source=trades_source("bars_1m"),
    entity=symbol,
    schema=BARS_SCHEMA,
    aggregations=[
        per_minute("open", "first", "price", 1),
        per_minute("high", "max", "price", 1),
        per_minute("low", "min", "price", 1),
        per_minute("close", "last", "price", 1),
        per_minute("volume", "sum", "size", 1),
        per_minute("trade_count", "count", "price", 1),
        per_minute("avg_trade_size", "mean", "size", 1),
        per_minute("notional", "sum", "notional", 1),
    ],
    rows="running",
    derived={
        "vwap": "notional / volume",
    },
    description=(
        "1-minute OHLCV bars per symbol as of every trade: a row at t covers the trades of the"
        " minute containing t with event time <= t"
    ),
)


def _over(minutes: int) -> str:
    return f"over the {minutes} minute{'s' if minutes > 1 else ''} ending at the row's time"


ROLLING_SCHEMA = [
    Field(name="symbol", dtype=String),
    Field(
        name="vwap_5m",
        dtype=Float64,
        description=f"volume-weighted average price {_over(5)}: notional_5m / volume_5m",
    ),
    Field(
        name="vwap_15m",
        dtype=Float64,
        description=f"volume-weighted average price {_over(15)}: notional_15m / volume_15m",
    ),
    Field(
        name="realized_vol_5m",
        dtype=Float64,
        description=(
            "sample standard deviation of the trade-to-trade log returns"
            f" (ln(price / the symbol's previous trade price)) {_over(5)}"
        ),
    ),
    Field(
        name="realized_vol_15m",
        dtype=Float64,
        description=(
            "sample standard deviation of the trade-to-trade log returns"
            f" (ln(price / the symbol's previous trade price)) {_over(15)}"
        ),
    ),
    Field(
        name="price_momentum_1m",
        dtype=Float64,
        description=f"last trade price / first trade price - 1, {_over(1)}",
    ),
    Field(
        name="price_momentum_5m",
        dtype=Float64,
        description=f"last trade price / first trade price - 1, {_over(5)}",
    ),
    Field(name="volume_5m", dtype=Float64, description=f"traded quantity {_over(5)}"),
    Field(
        name="volume_ratio",
        dtype=Float64,
        description=(
            "volume_1m / (volume_20m / 20): the traded quantity of the minute ending at the row's"
            " time over the mean quantity per minute of the 20 minutes ending then"
        ),
    ),
    Field(name="sma_5", dtype=Float64, description=f"mean trade price (per trade) {_over(5)}"),
    Field(name="sma_20", dtype=Float64, description=f"mean trade price (per trade) {_over(20)}"),
    Field(name="trade_count_1m", dtype=Int64, description=f"number of trades {_over(1)}"),
    Field(name="avg_trade_size_1m", dtype=Float64, description=f"mean trade size {_over(1)}"),
    Field(
        name="vwap_1m",
        dtype=Float64,
        description=f"volume-weighted average price {_over(1)}: notional_1m / volume_1m",
    ),
    Field(name="notional_1m", dtype=Float64, description=f"traded value (price * size) {_over(1)}"),
    Field(name="notional_5m", dtype=Float64, description=f"traded value (price * size) {_over(5)}"),
    Field(
        name="notional_15m", dtype=Float64, description=f"traded value (price * size) {_over(15)}"
    ),
    Field(name="volume_15m", dtype=Float64, description=f"traded quantity {_over(15)}"),
    Field(name="open_1m", dtype=Float64, description=f"price of the first trade {_over(1)}"),
    Field(name="close_1m", dtype=Float64, description=f"price of the last trade {_over(1)}"),
    Field(name="open_5m", dtype=Float64, description=f"price of the first trade {_over(5)}"),
    Field(name="close_5m", dtype=Float64, description=f"price of the last trade {_over(5)}"),
    Field(name="volume_1m", dtype=Float64, description=f"traded quantity {_over(1)}"),
    Field(name="volume_20m", dtype=Float64, description=f"traded quantity {_over(20)}"),
]

rolling_1m = minute_view(
    "rolling_1m",
    source=trades_source("rolling_1m"),
    entity=symbol,
    schema=ROLLING_SCHEMA,
    aggregations=[
        per_minute("notional_1m", "sum", "notional", 1),
        per_minute("notional_5m", "sum", "notional", 5),
        per_minute("volume_5m", "sum", "size", 5),
        per_minute("notional_15m", "sum", "notional", 15),
        per_minute("volume_15m", "sum", "size", 15),
        per_minute("realized_vol_5m", "std", "log_return", 5),
        per_minute("realized_vol_15m", "std", "log_return", 15),
        per_minute("open_1m", "first", "price", 1),
        per_minute("close_1m", "last", "price", 1),
        per_minute("open_5m", "first", "price", 5),
        per_minute("close_5m", "last", "price", 5),
        per_minute("volume_1m", "sum", "size", 1),
        per_minute("volume_20m", "sum", "size", 20),
        per_minute("trade_count_1m", "count", "price", 1),
        per_minute("avg_trade_size_1m", "mean", "size", 1),
        per_minute("sma_5", "mean", "price", 5),
        per_minute("sma_20", "mean", "price", 20),
    ],
    rows="window_end",
    derived={
        "vwap_1m": "notional_1m / volume_1m",
        "vwap_5m": "notional_5m / volume_5m",
        "vwap_15m": "notional_15m / volume_15m",
        "price_momentum_1m": "close_1m / open_1m - 1",
        "price_momentum_5m": "close_5m / open_5m - 1",
        "volume_ratio": "volume_1m / (volume_20m / 20)",
    },
    description=(
        "rolling features per symbol over clock-time windows: a row at the end of each minute,"
        " every window ending at the row's time (events with event time before it)"
    ),
)
