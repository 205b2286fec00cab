"""Small random offline data with ties, gaps longer than the TTL and an unknown symbol."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from featurestore.config import Settings
from featurestore.definitions import Definitions

SYMBOLS = ["AAA", "BBB", "CCC"]
START = pd.Timestamp("2024-03-31 22:00", tz="UTC")  # crosses a monthly partition boundary
MINUTES = 240


@dataclass
class OfflineData:
    settings: Settings
    definitions: Definitions
    rows: dict[str, pd.DataFrame]
    """Every feature row written, per view (ties included)."""


def view_rows(defs: Definitions, view_name: str, rng: np.random.Generator) -> pd.DataFrame:
    view = defs.view(view_name)
    frames = []
    for i, symbol in enumerate(SYMBOLS):
        minutes = np.arange(MINUTES)
        keep = rng.random(MINUTES) < 0.7
        if i == 1:
            keep[80:170] = False  # a gap longer than the TTL (1 h)
        ts = START + pd.to_timedelta(minutes[keep], unit="min")
        frames.append(pd.DataFrame({"symbol": symbol, "event_timestamp": ts}))
    rows = pd.concat(frames, ignore_index=True)
    ties = rows.sample(frac=0.15, random_state=int(rng.integers(1 << 30)))
    rows = pd.concat([rows, ties], ignore_index=True)
    created_offset = rng.integers(1, 50_000_000, len(rows))  # microseconds, all distinct enough
    rows["created_timestamp"] = rows["event_timestamp"] + pd.to_timedelta(created_offset, "us")
    for feature in view.features:
        if feature.value_type.name == "INT64":
            rows[feature.name] = rng.integers(0, 1000, len(rows))
        else:
            values = rng.normal(100, 10, len(rows))
            values[rng.random(len(rows)) < 0.05] = np.nan  # some null feature values
            rows[feature.name] = values
    return rows.sample(frac=1.0, random_state=1).reset_index(drop=True)


def entity_rows(n: int, seed: int) -> pd.DataFrame:
    """Random entity rows, with exact hits, TTL boundaries and an unknown symbol."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(-30 * 60, (MINUTES + 90) * 60, n)
    ts = START + pd.to_timedelta(offsets, unit="s")
    exact = rng.random(n) < 0.2
    ts = ts.where(~exact, ts.floor("min"))  # on a feature row's timestamp
    boundary = rng.random(n) < 0.1
    ts = ts.where(~boundary, ts.floor("min") + pd.Timedelta(hours=1))  # exactly TTL after one
    symbols = rng.choice([*SYMBOLS, "ZZZ"], n)
    return pd.DataFrame(
        {"symbol": symbols, "event_timestamp": ts, "row_id": np.arange(n), "label": rng.random(n)}
    )
