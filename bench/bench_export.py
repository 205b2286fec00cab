"""Point-in-time export: this store vs Feast's get_historical_features vs DuckDB's ASOF JOIN.

Sizes come from environment variables (defaults are the issue's):

* ``BENCH_EXPORT_ENTITY_ROWS`` (1,000,000): entity rows exported by this store and DuckDB.
* ``BENCH_EXPORT_FEATURE_ROWS`` (5,000,000): feature rows of the ``bars_1m`` view.
* ``BENCH_EXPORT_FEAST_ROWS`` (20,000): entity rows given to Feast, a subset, because Feast
  uploads entity rows with one INSERT per row and joins every entity row to every feature row of
  its symbol within the TTL; this store runs on the same subset too, for a like-for-like figure.

The feature table is built once per size (``bench_v2_<rows>_bars_1m``, in the layout of
:mod:`featurestore.offline.tables`: primary key covering the features) and reused by later runs;
it is vacuumed after loading, as autovacuum does to a table the processors write. DuckDB runs in
memory on the same rows (loading them into DuckDB is not timed). The store also runs once with
labels (5-minute forward return and direction, two more index probes per row on the same table).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.config import Settings, load_settings
from featurestore.definitions import Definitions, apply_definitions, market_definitions
from featurestore.definitions.feast_codec import feature_store
from featurestore.offline import LabelSpec, PostgresOfflineStore, TrainingRequest
from featurestore.offline._copy import copy_in
from featurestore.offline.tables import ensure_partitions, table_identifier

START_US = 1_704_067_200_000_000  # 2024-01-01T00:00Z
MINUTE_US = 60_000_000
SYMBOLS = 100
VIEW = "bars_1m"


@dataclass
class Timing:
    name: str
    entity_rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.entity_rows / self.seconds


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _features(n: int, defs: Definitions) -> pa.Table:
    rng = np.random.default_rng(42)
    minutes = n // SYMBOLS
    symbols = np.array([f"S{i:03d}" for i in range(SYMBOLS)])
    ts = np.tile(START_US + np.arange(minutes, dtype=np.int64) * MINUTE_US, SYMBOLS)
    columns: dict[str, object] = {
        "symbol": np.repeat(symbols, minutes),
        "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array(ts + 1_000_000, pa.timestamp("us", tz="UTC")),
    }
    for feature in defs.view(VIEW).features:
        if feature.value_type.name == "INT64":
            columns[feature.name] = rng.integers(0, 1000, len(ts))
        else:
            columns[feature.name] = rng.normal(100, 10, len(ts))
    return pa.table(columns)


def _entities(n: int, minutes: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    symbols = np.array([f"S{i:03d}" for i in range(SYMBOLS)])
    ts = START_US + rng.integers(0, (minutes + 30) * MINUTE_US, n)
    return pd.DataFrame(
        {
            "symbol": symbols[rng.integers(0, SYMBOLS, n)],
            "event_timestamp": pd.to_datetime(ts, unit="us", utc=True),
            "label": rng.random(n),
        }
    )


def _load(settings: Settings, defs: Definitions, features: pa.Table) -> str:
    view = defs.view(VIEW)
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = %s", (view.source.name,)
        ).fetchone()
        if row and row[0]:
            count = conn.execute(f'SELECT count(*) FROM "{view.source.name}"').fetchone()
            if count and count[0] == features.num_rows:
                return "reused"
        apply_definitions(settings, defs)
        conn.execute(f'TRUNCATE "{view.source.name}"')
        ts = features.column("event_timestamp")
        bounds = pc.min_max(ts).as_py()
        ensure_partitions(conn, view, bounds["min"], bounds["max"])
        with conn.cursor() as cur:
            for batch in features.to_batches(max_chunksize=500_000):
                copy_in(cur, table_identifier(view.source.table), features.column_names, batch)
        conn.execute(f'VACUUM ANALYZE "{view.source.name}"')
    return "loaded"


def _ours(
    store: PostgresOfflineStore,
    entities: pd.DataFrame,
    refs: list[str],
    labels: LabelSpec | None = None,
) -> tuple[float, pa.Table]:
    started = time.perf_counter()
    table = store.to_arrow(entities, TrainingRequest(features=refs, labels=labels))
    return time.perf_counter() - started, table


def _duckdb(features: pa.Table, entities: pd.DataFrame, names: list[str]) -> tuple[float, pa.Table]:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET TimeZone = 'UTC'")
    con.register("f_arrow", features)
    con.register("e_df", entities)
    con.execute("CREATE TABLE f AS SELECT * FROM f_arrow")
    con.execute("CREATE TABLE e AS SELECT row_number() OVER () AS ord, * FROM e_df")
    cols = ", ".join(
        f'CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 1 HOUR THEN f."{n}" END '
        f'AS "{n}"'
        for n in names
    )
    started = time.perf_counter()
    result = con.sql(
        f"SELECT e.symbol, e.event_timestamp, e.label, {cols} FROM e ASOF LEFT JOIN f "
        "ON e.symbol = f.symbol AND e.event_timestamp >= f.event_timestamp ORDER BY e.ord"
    ).to_arrow_table()
    return time.perf_counter() - started, result


def _feast(settings: Settings, project: str, entities: pd.DataFrame, refs: list[str]) -> float:
    fs = feature_store(settings, project)
    started = time.perf_counter()
    fs.get_historical_features(entity_df=entities, features=refs).to_arrow()
    return time.perf_counter() - started


def run(settings: Settings) -> str:
    n_entities = _env("BENCH_EXPORT_ENTITY_ROWS", 1_000_000)
    n_features = _env("BENCH_EXPORT_FEATURE_ROWS", 5_000_000)
    n_feast = min(_env("BENCH_EXPORT_FEAST_ROWS", 20_000), n_entities)
    defs = market_definitions(f"bench_export_{n_features}", table_prefix=f"bench_v2_{n_features}_")
    features = _features(n_features, defs)
    load_started = time.perf_counter()
    how = _load(settings, defs, features)
    load_s = time.perf_counter() - load_started
    entities = _entities(n_entities, n_features // SYMBOLS)
    names = list(defs.view(VIEW).feature_names)
    refs = [f"{VIEW}:{n}" for n in names]
    store = PostgresOfflineStore(settings.postgres.dsn, defs)
    _ours(store, entities.iloc[:1000], refs)  # opens the connections the store keeps

    ours_s, ours = _ours(store, entities, refs)
    duck_s, duck = _duckdb(features, entities, names)
    same = all(
        ours.column(n)
        .combine_chunks()
        .equals(duck.column(n).combine_chunks().cast(ours.schema.field(n).type))
        for n in names
    )
    subset = entities.iloc[:n_feast]
    ours_sub_s, _ = _ours(store, subset, refs)
    duck_sub_s, _ = _duckdb(features, subset, names)
    feast_s = _feast(settings, defs.project, subset, refs)
    labels_s, _ = _ours(store, entities, refs, LabelSpec(horizon=timedelta(minutes=5)))
    store.close()

    rows = [
        Timing("featurestore (PostgreSQL LATERAL join, index-only)", n_entities, ours_s),
        Timing("DuckDB ASOF JOIN (in memory)", n_entities, duck_s),
        Timing("featurestore, Feast's subset", n_feast, ours_sub_s),
        Timing("DuckDB, Feast's subset", n_feast, duck_sub_s),
        Timing("Feast get_historical_features", n_feast, feast_s),
        Timing("featurestore + labels (5 min forward return, direction)", n_entities, labels_s),
    ]
    lines = [
        "## Point-in-time export",
        "",
        f"{n_entities:,} entity rows against {n_features:,} feature rows of `{VIEW}` "
        f"({SYMBOLS} symbols, {len(names)} features, TTL 1 h); feature table {how} "
        f"in {load_s:.1f} s. Feast runs on the first {n_feast:,} entity rows only.",
        "",
        "| engine | entity rows | seconds | rows/s |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {t.name} | {t.entity_rows:,} | {t.seconds:.2f} | {t.rate:,.0f} |" for t in rows),
        "",
        f"- vs Feast (same subset): {rows[2].rate / rows[4].rate:,.0f}x its rows/s "
        f"(full run: {rows[0].rate / rows[4].rate:,.0f}x).",
        f"- vs DuckDB (full run): {rows[1].seconds / rows[0].seconds:.2f}x its speed "
        f"({rows[0].seconds / rows[1].seconds:.2f}x its time).",
        f"- Results identical to DuckDB's on all {n_entities:,} rows: {'yes' if same else 'NO'}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(load_settings()))
