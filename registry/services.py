"""Feature services: the named sets of features each model consumes."""

from __future__ import annotations

from feast import FeatureService
from metrics import metric_rolling_1m
from quotes import quotes_1m
from trades import bars_1m
from trades import rolling_1m

market_features_v1 = FeatureService(
    name="market_features_v1",
    features=[
        bars_1m[
            ["open", "high", "low", "close", "volume", "trade_count", "avg_trade_size", "vwap"]
        ],
        rolling_1m[
            [
                "vwap_5m",
                "vwap_15m",
                "realized_vol_5m",
                "realized_vol_15m",
                "price_momentum_1m",
                "price_momentum_5m",
                "volume_5m",
                "volume_ratio",
                "sma_5",
                "sma_20",
                "close_1m",
            ]
        ],
    ],
    tags={"model": "generic"},
    description="every market feature",
)

anomaly_features_v1 = FeatureService(
    name="anomaly_features_v1",
    features=[
        rolling_1m[
            [
                "volume_ratio",
                "realized_vol_5m",
                "price_momentum_1m",
                "price_momentum_5m",
                "trade_count_1m",
                "avg_trade_size_1m",
                "vwap_1m",
                "close_1m",
            ]
        ],
    ],
    tags={"model": "isolation_forest"},
    description=(
        "inputs of the anomaly scorer, all of the minute that just ended (scored at minute"
        " ends; vwap_1m and close_1m give the vwap/close spread)"
    ),
)

direction_features_v1 = FeatureService(
    name="direction_features_v1",
    features=[
        rolling_1m[
            [
                "price_momentum_1m",
                "price_momentum_5m",
                "realized_vol_5m",
                "realized_vol_15m",
                "sma_5",
                "sma_20",
                "vwap_5m",
                "vwap_15m",
                "vwap_1m",
                "close_1m",
            ]
        ],
    ],
    tags={"model": "direction"},
    description="inputs of the price-direction models",
)

quote_features_v1 = FeatureService(
    name="quote_features_v1",
    features=[quotes_1m],  # every feature of the view
    tags={"model": "generic"},
    description="every top-of-book feature of a symbol (quotes_1m)",
)

metric_features_v1 = FeatureService(
    name="metric_features_v1",
    features=[metric_rolling_1m],  # every feature of the view
    tags={"model": "generic"},
    description="rolling statistics of an entity's metric values and the latest value's z-score",
)
