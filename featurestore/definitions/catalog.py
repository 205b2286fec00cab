"""The canonical definitions of the market-data feature store, as domain objects.

``registry/`` turns these into Feast objects for ``feast apply``, and ``featurestore registry
apply`` does the same in-process; readers (service, processors, export) read what was applied
from the Feast registry, not from this module. Tests build the same catalog under their own
project and table names so that runs never collide.
"""

from __future__ import annotations

from datetime import timedelta

from featurestore.definitions.model import (
    Definitions,
    Entity,
    Feature,
    FeatureRef,
    FeatureService,
    FeatureView,
    SourceTable,
    ValueType,
)

__all__ = ["PROJECT", "market_definitions"]

PROJECT = "featurestore"
"""The Feast project every process of the store uses by default."""

_F64 = ValueType.FLOAT64

_BARS = (
    Feature("open", _F64, "first trade price of the minute"),
    Feature("high", _F64, "highest trade price of the minute"),
    Feature("low", _F64, "lowest trade price of the minute"),
    Feature("close", _F64, "last trade price of the minute"),
    Feature("volume", _F64, "traded quantity in the minute"),
    Feature("trade_count", ValueType.INT64, "number of trades in the minute"),
    Feature("avg_trade_size", _F64, "volume / trade_count"),
    Feature("vwap", _F64, "volume-weighted average price of the minute"),
)

_ROLLING = (
    Feature("vwap_5m", _F64, "sum(price*size) / sum(size) over the last 5 one-minute bars"),
    Feature("vwap_15m", _F64, "sum(price*size) / sum(size) over the last 15 one-minute bars"),
    Feature(
        "realized_vol_5m", _F64, "sample std of the last 5 one-bar log returns of close (6 bars)"
    ),
    Feature(
        "realized_vol_15m",
        _F64,
        "sample std of the last 15 one-bar log returns of close (16 bars)",
    ),
    Feature("price_momentum_1m", _F64, "(close - open) / open of the bar"),
    Feature("price_momentum_5m", _F64, "(close - open 4 bars earlier) / that open, over 5 bars"),
    Feature("volume_5m", _F64, "volume of the last 5 bars"),
    Feature("volume_ratio", _F64, "bar volume / mean bar volume of the last 20 bars (it included)"),
    Feature("sma_5", _F64, "simple moving average of close over 5 bars"),
    Feature("sma_20", _F64, "simple moving average of close over 20 bars"),
)
"""Windows count bars (minutes with trades; an empty minute is not a bar); a feature whose
window is not full yet is null."""


def _refs(view: str, names: tuple[str, ...]) -> tuple[FeatureRef, ...]:
    return tuple(FeatureRef(view, name) for name in names)


def market_definitions(
    project: str = PROJECT,
    *,
    table_prefix: str = "",
    source_topic: str = "trades",
    partition_interval: str = "month",
    ttl: timedelta = timedelta(hours=1),
) -> Definitions:
    """The entity, views and services of the store.

    Args:
        project: Feast project to define them in.
        table_prefix: Prepended to every offline table name (tests and benchmarks use a unique
            one); the views' names never change.
        source_topic: The Kafka topic of trade events the views are computed from.
        partition_interval: ``day`` or ``month`` range partitions of the offline tables.
        ttl: How long a row stays valid after its event time (0: forever). Online keys expire
            at event time + TTL by the wall clock, so historical data replayed today needs 0.
    """
    symbol = Entity("symbol", "symbol", ValueType.STRING, "a traded instrument's ticker")
    # A row stamped t was computed only from trades with event time <= t (see processors/).
    common = {"source_topic": source_topic, "bar_interval": "1m", "entity_key": "symbol"}
    bars = FeatureView(
        name="bars_1m",
        entities=("symbol",),
        features=_BARS,
        ttl=ttl,
        source=SourceTable(f"{table_prefix}bars_1m", partition_interval=partition_interval),
        tags={**common, "window": "1m", "kind": "ohlcv", "event_time": "as_of_trade"},
        description=(
            "1-minute OHLCV bars per symbol as of each trade: a row at t holds the bar of the"
            " minute containing t over its trades with event time <= t; the row at a minute's"
            " last microsecond holds its complete bar"
        ),
    )
    rolling = FeatureView(
        name="rolling_1m",
        entities=("symbol",),
        features=_ROLLING,
        ttl=ttl,
        source=SourceTable(f"{table_prefix}rolling_1m", partition_interval=partition_interval),
        tags={
            **common,
            "window": "1m",
            "lookback_windows": "1m,5m,15m,20m",
            "kind": "rolling",
            "event_time": "window_end",
        },
        description=(
            "rolling features over closed 1-minute bars, one row per symbol and traded minute at"
            " the minute's end, once the symbol's event time passes it plus the allowed lateness"
        ),
    )
    all_bars = tuple(f.name for f in _BARS)
    all_rolling = tuple(f.name for f in _ROLLING)
    services = (
        FeatureService(
            "market_features_v1",
            _refs("bars_1m", all_bars) + _refs("rolling_1m", all_rolling),
            {"model": "generic"},
            "every market feature",
        ),
        FeatureService(
            "anomaly_features_v1",
            _refs(
                "rolling_1m",
                ("volume_ratio", "realized_vol_5m", "price_momentum_1m", "price_momentum_5m"),
            )
            + _refs("bars_1m", ("trade_count", "avg_trade_size", "vwap", "close")),
            {"model": "isolation_forest"},
            "inputs of the anomaly scorer (vwap and close give the vwap/close spread)",
        ),
        FeatureService(
            "direction_features_v1",
            _refs(
                "rolling_1m",
                (
                    "price_momentum_1m",
                    "price_momentum_5m",
                    "realized_vol_5m",
                    "realized_vol_15m",
                    "sma_5",
                    "sma_20",
                    "vwap_5m",
                    "vwap_15m",
                ),
            )
            + _refs("bars_1m", ("vwap", "close")),
            {"model": "direction"},
            "inputs of the price-direction models",
        ),
    )
    ordered = tuple(sorted(services, key=lambda s: s.name))
    return Definitions(project, (symbol,), (bars, rolling), ordered)
