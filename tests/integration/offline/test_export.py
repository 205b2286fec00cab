"""The point-in-time export against Feast's own join and an independent DuckDB reference."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from featurestore.definitions import load_definitions
from featurestore.definitions.feast_codec import feature_store
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline import export_parquet
from tests.integration.offline.pit_data import OfflineData
from tests.integration.offline.pit_data import entity_rows

pytestmark = pytest.mark.integration

ALL = "market_features_v1"


_MADE: list[PostgresOfflineStore] = []


def _store(
    data: OfflineData, *, chunk_rows: int | None = None, parallelism: int = 2
) -> PostgresOfflineStore:
    """A store of ``data``'s tables, closed after the test (:func:`_close_stores`)."""
    store = PostgresOfflineStore(
        data.settings.postgres.dsn, data.definitions, chunk_rows=chunk_rows, parallelism=parallelism
    )
    _MADE.append(store)
    return store


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _MADE:
        _MADE.pop().close()


def test_definitions_read_back_from_the_registry(offline_data: OfflineData) -> None:
    assert load_definitions(offline_data.settings, offline_data.definitions.project) == (
        offline_data.definitions
    )


LAYOUTS = pytest.mark.parametrize("layout", ["offline_data", "pk_offline_data"])
"""Tables with ties (no primary key) and tables of the store's own layout."""


@LAYOUTS
def test_equals_feast_get_historical_features(request: pytest.FixtureRequest, layout: str) -> None:
    offline_data: OfflineData = request.getfixturevalue(layout)
    entities = entity_rows(400, seed=1)
    ours = _store(offline_data, chunk_rows=150).to_pandas(
        entities, TrainingRequest(feature_service=ALL)
    )
    assert list(ours["row_id"]) == list(entities["row_id"])  # order kept
    assert list(ours.columns[:4]) == list(entities.columns)  # extra columns kept

    with feature_store(offline_data.settings, offline_data.definitions.project) as fs:
        feast_df = fs.get_historical_features(
            entity_df=entities, features=fs.get_feature_service(ALL)
        ).to_df()
    assert len(feast_df) == len(entities)
    feast_df = feast_df.sort_values("row_id").reset_index(drop=True)
    features = [c for c in ours.columns if c not in entities.columns]
    pd.testing.assert_frame_equal(
        ours[features].astype("float64"), feast_df[features].astype("float64"), check_exact=True
    )
    # The data has what the test is about.
    assert ours["close"].isna().any() and ours["close"].notna().any()
    assert ours.loc[ours.symbol == "ZZZ", features].isna().all().all()


def _duckdb_reference(data: OfflineData, entities: pd.DataFrame) -> pd.DataFrame:
    """ASOF JOIN per view of the feature service on deduplicated rows (latest created per key
    and time), TTL after."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = entities.copy()
    con.register("entities", entities)
    service = next(s for s in data.definitions.services if s.name == ALL)
    read = {ref.view for ref in service.features}  # the rollups share bars_1m's feature names
    for view in (v for v in data.definitions.views if v.name in read):
        rows = data.rows[view.name]
        con.register("raw", rows)
        feats = ", ".join(f'f."{f}"' for f in view.feature_names)
        ttl = int(view.ttl.total_seconds())
        result = con.sql(
            f"""
            WITH latest AS (
                SELECT * FROM raw
                QUALIFY row_number() OVER (
                    PARTITION BY symbol, event_timestamp ORDER BY created_timestamp DESC) = 1
            )
            SELECT e.row_id, f.event_timestamp AS fts, {feats}
            FROM entities e ASOF LEFT JOIN latest f
              ON e.symbol = f.symbol AND e.event_timestamp >= f.event_timestamp
            ORDER BY e.row_id
            """
        ).df()
        expired = result["fts"].isna() | (
            result["fts"] < entities["event_timestamp"] - pd.Timedelta(seconds=ttl)
        )
        for name in view.feature_names:
            out[name] = result[name].astype("float64").where(~expired)
        con.unregister("raw")
    return out


@LAYOUTS
def test_equals_duckdb_asof_reference_on_random_data(
    request: pytest.FixtureRequest, layout: str
) -> None:
    offline_data: OfflineData = request.getfixturevalue(layout)
    entities = entity_rows(3000, seed=2)
    ours = _store(offline_data, chunk_rows=700, parallelism=2).to_pandas(
        entities, TrainingRequest(feature_service=ALL)
    )
    expected = _duckdb_reference(offline_data, entities)
    features = [c for c in ours.columns if c not in entities.columns]
    pd.testing.assert_frame_equal(
        ours[features].astype("float64"), expected[features], check_exact=True
    )


def test_iter_batches_and_full_feature_names(offline_data: OfflineData) -> None:
    entities = entity_rows(250, seed=3)
    request = TrainingRequest(
        features=["rolling_1m:sma_5", "bars_1m:trade_count"], full_feature_names=True
    )
    batches = list(_store(offline_data, chunk_rows=100).iter_batches(entities, request))
    assert [b.num_rows for b in batches] == [100, 100, 50]
    assert batches[0].schema.names[-2:] == ["rolling_1m__sma_5", "bars_1m__trade_count"]
    assert str(batches[0].schema.field("bars_1m__trade_count").type) == "int64"


def test_export_parquet_from_csv_file(offline_data: OfflineData, tmp_path: Path) -> None:
    entities = entity_rows(300, seed=4)
    source = tmp_path / "entities.csv"
    entities.assign(
        event_timestamp=entities.event_timestamp.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ).to_csv(source, index=False)
    out = tmp_path / "train.parquet"
    stats = export_parquet(
        _store(offline_data, chunk_rows=128), source, TrainingRequest(feature_service=ALL), out
    )
    assert (
        stats.rows == 300 and out.exists() and not out.with_name("train.parquet.partial").exists()
    )
    from_file = pq.read_table(out).to_pandas()
    direct = _store(offline_data).to_pandas(entities, TrainingRequest(feature_service=ALL))
    np.testing.assert_array_equal(from_file["close"].to_numpy(), direct["close"].to_numpy())


def test_naive_timestamps_are_utc_with_a_warning(offline_data: OfflineData) -> None:
    entities = entity_rows(50, seed=5)
    naive = entities.assign(event_timestamp=entities.event_timestamp.dt.tz_localize(None))
    store = _store(offline_data)
    with pytest.warns(UserWarning, match="taken to be UTC"):
        from_naive = store.to_pandas(naive, TrainingRequest(feature_service=ALL))
    aware = store.to_pandas(entities, TrainingRequest(feature_service=ALL))
    pd.testing.assert_series_equal(from_naive["vwap"], aware["vwap"])
    with pytest.raises(ValidationError, match="without a timezone") as info:
        store.to_pandas(naive, TrainingRequest(feature_service=ALL, allow_naive_timestamps=False))
    assert info.value.field == "event_timestamp"


@pytest.mark.parametrize(
    ("request_", "error", "field", "message"),
    [
        (
            TrainingRequest(features=["bars_1m:nope"]),
            NotFoundError,
            None,
            "feature view 'bars_1m' has no feature 'nope' (it has: open, high",
        ),
        (TrainingRequest(features=["nope:close"]), NotFoundError, None, "unknown feature view"),
        (TrainingRequest(feature_service="nope"), NotFoundError, None, "unknown feature service"),
        (
            TrainingRequest(features=["bars_1m:close"], timestamp_column="ts"),
            ValidationError,
            "ts",
            "entity rows have no column 'ts' (columns: symbol, event_timestamp, row_id, label)",
        ),
    ],
)
def test_request_errors(
    offline_data: OfflineData,
    request_: TrainingRequest,
    error: type[Exception],
    field: str | None,
    message: str,
) -> None:
    with pytest.raises(error, match=re.escape(message)) as info:
        _store(offline_data).to_pandas(entity_rows(5, seed=6), request_)
    if field is not None:
        assert getattr(info.value, "field", None) == field


def test_entity_row_errors(offline_data: OfflineData) -> None:
    store = _store(offline_data)
    request = TrainingRequest(feature_service=ALL)
    entities = entity_rows(5, seed=7)
    with pytest.raises(ValidationError, match="no entity rows"):
        store.to_pandas(entities.iloc[:0], request)
    with pytest.raises(ValidationError) as info:
        store.to_pandas(entities.drop(columns=["symbol"]), request)
    assert info.value.field == "symbol"
    with_null = entities.astype({"event_timestamp": object})
    with_null.loc[3, "event_timestamp"] = None
    with pytest.raises(ValidationError, match="null in row 3"):
        store.to_pandas(with_null, request)
    with pytest.raises(ValidationError, match="names of requested features"):
        store.to_pandas(entities.assign(close=1.0), request)
