"""The column-wise Redis arguments of the processors' writes: the row-wise ones, byte for byte."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online.base import FeatureSpec
from featurestore.online.base import FeatureViewSpec
from featurestore.online.base import ValueType
from featurestore.online.catalog import StaticCatalog
from featurestore.online.redis import table_write_args
from featurestore.online.redis import write_args

FEATURES = (
    FeatureSpec("close", ValueType.FLOAT64),
    FeatureSpec("count", ValueType.INT64),
    FeatureSpec("ratio", ValueType.FLOAT32),
    FeatureSpec("venue", ValueType.STRING),
    FeatureSpec("halted", ValueType.BOOL),
)


def _catalog(ttl: timedelta | None) -> StaticCatalog:
    return StaticCatalog.of("proj", [FeatureViewSpec("bars", ("symbol",), FEATURES, ttl)])


def _table(rng: np.random.Generator, n: int) -> pa.Table:
    micros = rng.integers(-(10**15), 2 * 10**15, n)  # before and after the epoch
    close = rng.normal(0, 1e3, n)
    close[rng.random(n) < 0.1] = np.nan
    close[rng.random(n) < 0.1] = 0.0
    nulls = rng.random(n) < 0.2
    return pa.table({
        "symbol": [f"S{i % 7}" for i in range(n)],
        "event_timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "close": pa.array(close, mask=nulls),
        "count": pa.array(rng.integers(-5, 10**12, n), mask=rng.random(n) < 0.2),
        "ratio": pa.array(rng.random(n)),
        "venue": pa.array([["Q", "N", None][i % 3] for i in range(n)]),
        "halted": pa.array(rng.random(n) < 0.5),
    })  # fmt: skip


def _row_wise(table: pa.Table, catalog: StaticCatalog) -> list[tuple[bytes, list[bytes | str]]]:
    names = [f.name for f in FEATURES]
    rows = [
        FeatureRow("bars", EntityKey(("symbol",), (r["symbol"],)), r["event_timestamp"],
                   {name: r[name] for name in names})
        for r in table.to_pylist()
    ]  # fmt: skip
    return [write_args(row, catalog) for row in rows]


@pytest.mark.parametrize("ttl", [None, timedelta(hours=1), timedelta(days=3, microseconds=7)])
@pytest.mark.parametrize("seed", range(5))
def test_the_same_arguments_as_row_by_row(ttl: timedelta | None, seed: int) -> None:
    catalog = _catalog(ttl)
    table = _table(np.random.default_rng(seed), 300)
    names = [f.name for f in FEATURES]
    assert table_write_args(table, "bars", names, "symbol", catalog) == _row_wise(table, catalog)


def test_timestamps_of_another_unit_go_row_by_row() -> None:
    catalog = _catalog(timedelta(hours=1))
    table = _table(np.random.default_rng(9), 20)
    at = pa.array(
        [datetime(2026, 1, 5, 15, 0, i, tzinfo=UTC) for i in range(20)],
        pa.timestamp("ms", tz="UTC"),
    )
    table = table.set_column(1, "event_timestamp", at)
    names = [f.name for f in FEATURES]
    assert table_write_args(table, "bars", names, "symbol", catalog) == _row_wise(table, catalog)


def test_an_unknown_feature_is_refused_naming_it() -> None:
    table = _table(np.random.default_rng(1), 3).append_column("nope", pa.array([1.0, 2.0, 3.0]))
    with pytest.raises(Exception, match="bars:nope"):
        table_write_args(table, "bars", ["close", "nope"], "symbol", _catalog(None))
