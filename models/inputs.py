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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from featurestore.definitions.model import FeatureRef
from featurestore.errors import ValidationError

__all__ = ["CLOSE", "InputTransform", "input_names", "model_inputs"]

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
    ref = FeatureRef.of_column(column)
    return column if ref is None else ref.feature


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


@dataclass(frozen=True)
class InputTransform:
    """:func:`model_inputs` on a matrix: the positions it reads, prepared once per column list."""

    close: int | None
    """Column of ``close`` in the raw matrix (None: no price level to express)."""
    sources: np.ndarray
    """Per model input, the raw column it comes from."""
    relative: np.ndarray
    """Per model input, whether it is a price level (divided by close, minus 1)."""
    logged: np.ndarray
    """Per model input, whether it is a count or volume (log1p of its non-negative part)."""

    @classmethod
    def of(cls, columns: Sequence[str]) -> InputTransform:
        """The transform of raw features ``columns`` (their order is the matrix's).

        Raises:
            ValidationError: price levels are given without ``close``.
        """
        kept = [i for i, c in enumerate(columns) if c != CLOSE]
        names = input_names(columns)
        needs_close = any(_feature(columns[i]) in _PRICE_LEVELS for i in kept)
        if needs_close and CLOSE not in columns:
            raise ValidationError(
                f"price-level features need {CLOSE!r} to be expressed against", field=CLOSE
            )
        return cls(
            list(columns).index(CLOSE) if needs_close else None,
            np.asarray(kept, dtype=np.intp),
            np.asarray([n.endswith("_rel_close") for n in names], dtype=bool),
            np.asarray([n.endswith("_log1p") for n in names], dtype=bool),
        )

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """The model inputs (rows x inputs, float64, NaN where missing) of a raw matrix."""
        out = raw[:, self.sources].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.close is not None and self.relative.any():
                close = raw[:, self.close : self.close + 1].astype(np.float64)
                out[:, self.relative] = out[:, self.relative] / close - 1.0
            if self.logged.any():
                out[:, self.logged] = np.log1p(np.clip(out[:, self.logged], 0.0, None))
        out[~np.isfinite(out)] = np.nan
        return out


def model_inputs(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The model inputs (float64, NaN where a feature is missing) of the feature ``columns``.

    Raises:
        ValidationError: a column is missing, or price levels are given without ``close``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"feature columns missing: {missing}", field=missing[0])
    transform = InputTransform.of(columns)
    raw = (
        np.column_stack(
            [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64") for c in columns]
        )
        if len(columns)
        else np.zeros((len(frame), 0))
    )
    return pd.DataFrame(transform(raw), index=frame.index, columns=input_names(columns))
