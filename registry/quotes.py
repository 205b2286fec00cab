"""The quotes topic and the view computed from it: 1-minute top-of-book features per symbol.

Shaped like ``trades.py`` (one ``KafkaSource`` per view, ``featurestore.*`` tags for what Feast
has no field for; ``README.md`` says why). Quotes are keyed by symbol in Kafka, as trades are,
so the views share the ``symbol`` entity. Each Quote event is the book after one update, so the
computed columns below are the book's state as of that event.
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

QUOTE_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Quote",
        "namespace": "featurestore.v1",
        "fields": [
            {"name": "symbol", "type": "string"},
            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "bid_price", "type": "double"},
            {"name": "bid_size", "type": "long"},
            {"name": "ask_price", "type": "double"},
            {"name": "ask_size", "type": "long"},
            {"name": "quote_id", "type": "string"},
        ],
    }
)
"""What the views read of a Quote (``featurestore/events/schemas/quote.avsc`` has more)."""


def quotes_source(view: str) -> KafkaSource:
    """The quotes topic as the source of ``view``, whose offline table has the view's name."""
    return stream_source(
        "quotes",
        SETTINGS.topics.quotes,
        view,
        QUOTE_SCHEMA,
        entity_field="symbol",
        id_field="quote_id",
        description="top-of-book quotes (the book after each update), Avro, keyed by symbol",
        columns={
            "mid": "(bid_price + ask_price) / 2",
            "spread_bps": "(ask_price - bid_price) / mid * 10000",
            "imbalance": "(bid_size - ask_size) / (bid_size + ask_size)",
        },
    )


def _over(minutes: int) -> str:
    span = f"{minutes} minutes" if minutes > 1 else "minute"
    return f"over the quotes of the {span} ending at the row's time"


_MID = "mid price (bid_price + ask_price) / 2"
_SPREAD = "quoted spread (ask_price - bid_price) / mid * 10,000 in basis points"
_IMBALANCE = (
    "book imbalance (bid_size - ask_size) / (bid_size + ask_size), in [-1, 1]"
    " (null when both sizes are 0)"
)

QUOTES_SCHEMA = [
    Field(name="symbol", dtype=String, description="the ticker the quotes are of (join key)"),
    Field(name="mid_1m", dtype=Float64, description=f"mean {_MID}, {_over(1)}"),
    Field(
        name="mid_last",
        dtype=Float64,
        description=(
            f"{_MID} of the latest quote (by event time) of the minute ending at the row's time"
        ),
    ),
    Field(name="spread_bps_1m", dtype=Float64, description=f"mean {_SPREAD}, {_over(1)}"),
    Field(name="spread_bps_max_1m", dtype=Float64, description=f"widest {_SPREAD}, {_over(1)}"),
    Field(name="spread_bps_5m", dtype=Float64, description=f"mean {_SPREAD}, {_over(5)}"),
    Field(name="imbalance_1m", dtype=Float64, description=f"mean {_IMBALANCE}, {_over(1)}"),
    Field(
        name="quote_count_1m",
        dtype=Int64,
        description="number of quotes in the minute ending at the row's time",
    ),
]

quotes_1m = minute_view(
    "quotes_1m",
    source=quotes_source("quotes_1m"),
    entity=symbol,
    schema=QUOTES_SCHEMA,
    aggregations=[
        per_minute("mid_1m", "mean", "mid", 1),
        per_minute("mid_last", "last", "mid", 1),
        per_minute("spread_bps_1m", "mean", "spread_bps", 1),
        per_minute("spread_bps_max_1m", "max", "spread_bps", 1),
        per_minute("spread_bps_5m", "mean", "spread_bps", 5),
        per_minute("imbalance_1m", "mean", "imbalance", 1),
        per_minute("quote_count_1m", "count", "mid", 1),
    ],
    rows="window_end",
    description=(
        "top-of-book features per symbol: a row at the end of each minute, every window ending"
        " at the row's time (quotes with event time before it)"
    ),
)
