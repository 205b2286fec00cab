"""From exported feature columns to what a model is fitted on.

Feature columns are named ``view__feature`` (the export's full feature names, and the names of
every registered model's signature). Price levels differ by symbol and over time, so a model never
sees them raw: each price-level feature becomes its relative distance to the bar's close
(``x / close - 1``), ``close`` itself is dropped, and counts and volumes are log-scaled. The
transform lives inside every registered model (:mod:`models.pyfunc`), so callers send raw
features and training and serving cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError

__all__ = ["CLOSE", "input_names", "model_inputs"]

CLOSE = "rolling_1m__close_1m"
"""The reference price level-features are expressed against: the last price of the minute
that just ended (the models score at minute ends, the rows of the window-end view)."""

_PRICE_LEVELS = frozenset(
    {
        "open", "high", "low", "close", "vwap", "vwap_1m", "vwap_5m", "vwap_15m", "sma_5",
        "sma_20", "open_1m", "close_1m", "open_5m", "close_5m",
    }
)  # fmt: skip
_LOG_SCALED = frozenset(
    {
        "volume", "volume_1m", "volume_5m", "volume_15m", "volume_20m", "trade_count",
        "trade_count_1m", "avg_trade_size", "avg_trade_size_1m",
    }
)  # fmt: skip


def _feature(column: str) -> str:
    return column.rsplit("__", 1)[-1]


def input_names(columns: Sequence[str]) -> list[str]:
    """The names of the model inputs :func:`model_inputs` derives from ``columns``."""
    names = []
    for column in columns:
        feature = _feature(column)
        if column == CLOSE:
            continue
        if feature in _PRICE_LEVELS:
            names.append(f"{column}_rel_close")
        elif feature in _LOG_SCALED:
            names.append(f"{column}_log1p")
        else:
            names.append(column)
    return names


def model_inputs(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The model inputs (float64, NaN where a feature is missing) of the feature ``columns``.

    Raises:
        ValidationError: a column is missing, or price levels are given without ``close``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"feature columns missing: {missing}", field=missing[0])
    needs_close = any(_feature(c) in _PRICE_LEVELS for c in columns if c != CLOSE)
    if needs_close and CLOSE not in frame.columns:
        raise ValidationError(
            f"price-level features need {CLOSE!r} to be expressed against", field=CLOSE
        )
    close = frame[CLOSE].to_numpy(dtype="float64") if needs_close else None
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for column, name in zip(
            [c for c in columns if c != CLOSE], input_names(columns), strict=True
        ):
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            if name.endswith("_rel_close"):
                assert close is not None
                values = values / close - 1.0
            elif name.endswith("_log1p"):
                values = np.log1p(np.clip(values, 0.0, None))
            out[name] = np.where(np.isfinite(values), values, np.nan)
    return pd.DataFrame(out, index=frame.index)
