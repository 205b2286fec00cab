"""Filling offline tables with the declared features of a trades frame, and the demo data set.

The features are computed by the processors' engine from the applied definitions
(:func:`processors.features.frame.compute_frame`): the first models are trained on exactly
the maths that serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

import pandas as pd
import psycopg

from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.error_maps import postgres_error
from featurestore.ingest.sources.synthetic import RARE_JUMPS
from featurestore.ingest.sources.synthetic import MarketConfig
from featurestore.ingest.sources.synthetic import SyntheticMarket
from featurestore.offline import create_offline_tables
from featurestore.offline import write_feature_rows
from models.demo.market import Injection
from models.demo.market import inject
from models.demo.market import plan_injections
from models.demo.market import trades_frame
from processors.features.frame import compute_frame

__all__ = ["DemoData", "demo_definitions", "demo_market", "write_features"]

DEMO_START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@dataclass(frozen=True)
class DemoData:
    """A trades frame with the anomalies injected into it, and what was injected."""

    trades: pd.DataFrame
    injections: list[Injection]


def demo_market(
    *,
    seed: int = 0,
    symbols: int = 8,
    minutes: int = 180,
    rate: float = 30.0,
    jump_probability: float = RARE_JUMPS,
    anomalies: int = 12,
    start: datetime = DEMO_START,
) -> DemoData:
    """A seeded synthetic market with ``anomalies`` injected price spikes and volume bursts.

    Natural jumps are rare by default (1 in 100,000 trades) so that the injected ones are what
    stands out; the same arguments give the same trades.
    """
    config = MarketConfig(
        start=start,
        seed=seed,
        symbols=symbols,
        rate=rate,
        duration_s=minutes * 60.0,
        jump_probability=jump_probability,
    )
    trades = trades_frame(SyntheticMarket(config))
    injections = plan_injections(trades, anomalies, seed=seed) if anomalies else []
    return DemoData(inject(trades, injections, seed=seed), injections)


def write_features(
    dsn: str, definitions: Definitions, trades: pd.DataFrame, created: datetime | None = None
) -> dict[str, int]:
    """Compute the declared views' rows of ``trades`` and upsert them.

    Creates the views' tables when missing. Returns the rows written per view.
    """
    # As in a stream that goes on: the windows of the last minutes stay open, rather than
    # closing into rows of a market that went quiet (what a bounded frame's end would give).
    frames = compute_frame(definitions, trades, created=created, complete=False)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_offline_tables(conn, definitions)
            return {
                name: write_feature_rows(conn, definitions, name, frame)
                for name, frame in frames.items()
            }
    except psycopg.Error as exc:
        raise postgres_error(exc, "the offline store, writing the demo's feature rows") from exc


def demo_definitions(project: str = "featurestore_demo", prefix: str = "demo_") -> Definitions:
    """The catalog under its own project and table names, apart from the live tables."""
    return market_definitions(project, table_prefix=prefix)
