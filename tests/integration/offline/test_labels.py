"""Labels computed in PostgreSQL: equal to the pandas reference, and free of lookahead."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.offline import LabelSpec
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline import add_forward_labels
from featurestore.offline import create_offline_tables
from featurestore.offline import write_feature_rows
from featurestore.offline.tables import table_identifier
from tests.integration.offline.pit_data import OfflineData
from tests.integration.offline.pit_data import entity_rows

pytestmark = pytest.mark.integration

T0 = pd.Timestamp("2024-05-01 13:30", tz="UTC")
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
SPEC = LabelSpec(horizon=timedelta(minutes=3), max_wait=timedelta(seconds=20))


def _bars(defs: Definitions, rng: np.random.Generator, n_per_symbol: int) -> pd.DataFrame:
    """Dense bars_1m rows at irregular microsecond times, like the processors' as-of-trade rows."""
    frames = []
    for symbol in SYMBOLS:
        offsets = np.unique(rng.integers(0, 2 * 3600 * 1_000_000, n_per_symbol))
        ts = T0 + pd.to_timedelta(offsets, unit="us")
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, len(ts))))
        frames.append(pd.DataFrame({"symbol": symbol, "event_timestamp": ts, "close": close}))
    rows = pd.concat(frames, ignore_index=True)
    rows["created_timestamp"] = rows["event_timestamp"] + pd.Timedelta(milliseconds=5)
    for feature in defs.view("bars_1m").features:
        if feature.name != "close":
            rows[feature.name] = rng.integers(1, 50, len(rows)).astype(
                "int64" if feature.value_type.name == "INT64" else "float64"
            )
    return rows


class _Tables:
    def __init__(self, settings: Settings) -> None:
        run = uuid.uuid4().hex[:8]
        self.settings = settings
        self.defs = market_definitions(f"labels_{run}", table_prefix=f"l{run}_")
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            create_offline_tables(conn, self.defs)

    def write(self, rows: pd.DataFrame) -> None:
        with psycopg.connect(self.settings.postgres.dsn, autocommit=True) as conn:
            write_feature_rows(conn, self.defs, "bars_1m", rows)

    def labels(self, entities: pd.DataFrame, spec: LabelSpec = SPEC) -> pd.DataFrame:
        with PostgresOfflineStore(self.settings.postgres.dsn, self.defs) as store:
            return store.to_pandas(
                entities, TrainingRequest(features=["bars_1m:close"], labels=spec)
            )

    def drop(self) -> None:
        with psycopg.connect(self.settings.postgres.dsn, autocommit=True) as conn:
            for view in self.defs.views:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(table_identifier(view.source.table))
                )


@pytest.fixture
def tables(stack: Settings) -> Iterator[_Tables]:
    made = _Tables(stack)
    yield made
    made.drop()


def _entity_rows(bars: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    ts = T0 + pd.to_timedelta(rng.integers(-60, 2 * 3600 + 60, n), unit="s")
    on_bar = rng.random(n) < 0.25  # exactly at a bar's time
    picks = bars["event_timestamp"].to_numpy()[rng.integers(0, len(bars), n)]
    ts = ts.where(~on_bar, pd.DatetimeIndex(picks))
    return pd.DataFrame(
        {"symbol": rng.choice([*SYMBOLS, "ZZZ"], n), "event_timestamp": ts, "row_id": range(n)}
    )


def test_sql_labels_equal_the_pandas_reference(tables: _Tables) -> None:
    rng = np.random.default_rng(3)
    bars = _bars(tables.defs, rng, 3_000)
    tables.write(bars)
    entities = _entity_rows(bars, rng, 4_000)
    directions: set[float] = set()
    for spec in (SPEC, LabelSpec(horizon=timedelta(seconds=30), threshold=0.0005)):
        ours = tables.labels(entities, spec)
        expected = add_forward_labels(entities, bars, spec)
        assert list(ours["row_id"]) == list(entities["row_id"])
        pd.testing.assert_series_equal(
            ours["forward_return"], expected["forward_return"], check_exact=True
        )
        pd.testing.assert_series_equal(
            ours["direction"].astype("Int8"), expected["direction"], check_exact=True
        )
        # The data has what the test is about: labels, nulls, and every direction.
        assert ours["forward_return"].notna().mean() > 0.5
        assert ours.loc[ours.symbol == "ZZZ", "forward_return"].isna().all()
        directions |= set(ours["direction"].dropna())
    assert directions == {-1, 0, 1}


def test_sql_labels_with_ties_break_them_by_created(offline_data: OfflineData) -> None:
    """On tables with several rows per (symbol, event_timestamp), the latest created wins."""
    entities = entity_rows(2_000, seed=9)
    spec = LabelSpec(horizon=timedelta(minutes=5), max_wait=timedelta(minutes=2))
    with PostgresOfflineStore(offline_data.settings.postgres.dsn, offline_data.definitions) as s:
        ours = s.to_pandas(entities, TrainingRequest(features=["bars_1m:vwap"], labels=spec))
    expected = add_forward_labels(entities, offline_data.rows["bars_1m"], spec)
    pd.testing.assert_series_equal(
        ours["forward_return"], expected["forward_return"], check_exact=True
    )
    assert ours["forward_return"].notna().mean() > 0.3


def test_no_lookahead_bars_at_or_before_t_or_after_the_horizon_never_change_a_label(
    tables: _Tables,
) -> None:
    rng = np.random.default_rng(5)
    bars = _bars(tables.defs, rng, 2_000)
    tables.write(bars)
    # One row per symbol, so that each symbol's bars outside its row's window can be rewritten.
    times = [T0 + pd.Timedelta(minutes=m) for m in (20, 40, 60, 80)]
    times[1] = bars.loc[bars.symbol == "BBB", "event_timestamp"].iloc[150]  # exactly on a bar
    entities = pd.DataFrame({"symbol": SYMBOLS, "event_timestamp": times})
    before = tables.labels(entities)
    assert before["forward_return"].notna().all()

    outside = []
    for symbol, t in zip(SYMBOLS, times, strict=True):
        own = bars[bars.symbol == symbol]
        ts = own["event_timestamp"]
        outside.append(own[(ts <= t) | (ts > t + SPEC.horizon)])
        extra = own.iloc[:2].copy()  # new bars exactly at t, and just after t + horizon
        extra["event_timestamp"] = [t, t + SPEC.horizon + pd.Timedelta(microseconds=1)]
        outside.append(extra)
    rewritten = pd.concat(outside, ignore_index=True)
    rewritten["close"] = rng.uniform(1, 1000, len(rewritten))
    rewritten["created_timestamp"] += pd.Timedelta(days=1)  # newer: the upsert replaces them
    tables.write(rewritten)
    after = tables.labels(entities)
    pd.testing.assert_frame_equal(
        after[["forward_return", "direction"]], before[["forward_return", "direction"]]
    )
    assert not after["close"].equals(before["close"])  # the features at t did change

    # The test can fail: a bar inside the window does change the label.
    symbol, t = SYMBOLS[2], times[2]
    own = bars[(bars.symbol == symbol) & (bars.event_timestamp > t)]
    last_in_window = own[own.event_timestamp <= t + SPEC.horizon].iloc[[-1]].copy()
    last_in_window["close"] *= 1.5
    last_in_window["created_timestamp"] += pd.Timedelta(days=2)
    tables.write(last_in_window)
    changed = tables.labels(entities)
    assert changed["forward_return"][2] != before["forward_return"][2]
    assert changed["forward_return"].drop(index=2).equals(before["forward_return"].drop(index=2))


def test_label_request_errors(tables: _Tables) -> None:
    rows = pd.DataFrame({"symbol": ["AAA"], "event_timestamp": [T0]})
    with PostgresOfflineStore(tables.settings.postgres.dsn, tables.defs) as store:
        with pytest.raises(NotFoundError, match="unknown feature view 'bars_5m'"):
            store.to_pandas(
                rows, TrainingRequest(features=["bars_1m:close"], labels=LabelSpec(view="bars_5m"))
            )
        with pytest.raises(NotFoundError, match="has no feature 'mid'"):
            store.to_pandas(
                rows,
                TrainingRequest(features=["bars_1m:close"], labels=LabelSpec(price_column="mid")),
            )
        with pytest.raises(ValidationError, match="names of requested features or labels") as info:
            store.to_pandas(
                rows.assign(direction=1), TrainingRequest(features=["bars_1m:close"], labels=SPEC)
            )
        assert info.value.field == "direction"


def _bars_at(defs: Definitions, symbol: str, times: pd.DatetimeIndex) -> pd.DataFrame:
    """bars_1m rows of ``symbol`` at ``times``, closes rising by 0.01 a row."""
    rows = pd.DataFrame(
        {"symbol": symbol, "event_timestamp": times, "close": 100 + 0.01 * np.arange(len(times))}
    )
    rows["created_timestamp"] = rows["event_timestamp"] + pd.Timedelta(milliseconds=5)
    for feature in defs.view("bars_1m").features:
        if feature.name != "close":
            rows[feature.name] = 1 if feature.value_type.name == "INT64" else 1.0
    return rows


def test_a_label_is_null_until_the_bars_reach_its_horizon(tables: _Tables) -> None:
    """An export run at 05:55:03 labels 05:55 only once a bar at or after 06:00 is in the store.

    The data decides, not the clock: these bars are of 2013, and their labels are made.
    """
    spec = LabelSpec(horizon=timedelta(minutes=5))
    start = pd.Timestamp("2013-05-01 05:40", tz="UTC")
    live = pd.date_range(start, periods=46, freq="20s").append(
        pd.DatetimeIndex([start + pd.Timedelta(minutes=15, seconds=3)])  # the last: 05:55:03
    )
    bars = pd.concat(
        [
            _bars_at(tables.defs, "QNHI", live),
            _bars_at(tables.defs, "BBB", pd.date_range(start, periods=90, freq="20s")),
        ],
        ignore_index=True,
    )
    tables.write(bars)
    times = pd.date_range(start + pd.Timedelta(minutes=8), periods=8, freq="1min")  # 05:48-05:55
    entities = pd.DataFrame(
        {"symbol": ["QNHI"] * 8 + ["BBB"] * 8, "event_timestamp": times.append(times)}
    )
    ours = tables.labels(entities, spec)
    passed = np.r_[[True] * 3, [False] * 5, [True] * 8]  # QNHI: t + 5 min <= 05:55:03
    assert ours["forward_return"].notna().to_numpy().tolist() == passed.tolist()
    assert ours["direction"].notna().to_numpy().tolist() == passed.tolist()
    expected = add_forward_labels(entities, bars, spec)
    pd.testing.assert_series_equal(ours["forward_return"], expected["forward_return"])

    # An empty bar (no price: the minute's first trade has not come) at 05:56:01 is the market
    # seen past 05:56:01: the labels at 05:51 are made, from the bars before; 05:52 on wait.
    empty = _bars_at(tables.defs, "QNHI", pd.DatetimeIndex([start + pd.Timedelta(seconds=961)]))
    empty["close"] = np.nan
    tables.write(empty)
    later = tables.labels(entities, spec)
    passed[3] = True
    assert later["forward_return"].notna().to_numpy().tolist() == passed.tolist()
    assert later["forward_return"][3] == pytest.approx(100.46 / 100.34 - 1)  # 05:55:03 / 05:51:20
    both = pd.concat([bars, empty], ignore_index=True)
    reference = add_forward_labels(entities, both, spec)
    pd.testing.assert_series_equal(later["forward_return"], reference["forward_return"])
    pd.testing.assert_series_equal(
        later["direction"].astype("Int8"), reference["direction"], check_exact=True
    )


def test_the_horizon_passes_at_a_bar_exactly_at_its_end_and_per_symbol(tables: _Tables) -> None:
    """A bar at exactly ``t + horizon`` makes the label; one a microsecond too early does not.

    Each row is judged by the latest bar of its own symbol: a symbol whose bars ran on does not
    make the labels of one whose bars stopped.
    """
    spec = LabelSpec(horizon=timedelta(minutes=5))
    start = pd.Timestamp("2013-05-01 05:40", tz="UTC")
    bars = pd.concat(
        [
            # The last bar of QNHI: 05:55:00, exactly the horizon's end of 05:50:00.
            _bars_at(tables.defs, "QNHI", pd.date_range(start, periods=46, freq="20s")),
            _bars_at(tables.defs, "BBB", pd.date_range(start, periods=90, freq="20s")),
        ],
        ignore_index=True,
    )
    tables.write(bars)
    at_end = start + pd.Timedelta(minutes=10)
    just_after = at_end + pd.Timedelta(microseconds=1)
    entities = pd.DataFrame(
        {
            "symbol": ["QNHI", "QNHI", "BBB", "BBB", "ZZZ"],
            "event_timestamp": [at_end, just_after, at_end, just_after, at_end],
        }
    )
    ours = tables.labels(entities, spec)
    assert ours["forward_return"].notna().tolist() == [True, False, True, True, False]
    assert ours["forward_return"][0] == pytest.approx((100 + 0.01 * 45) / (100 + 0.01 * 31) - 1)
    expected = add_forward_labels(entities, bars, spec)
    pd.testing.assert_series_equal(ours["forward_return"], expected["forward_return"])
