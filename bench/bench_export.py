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
import statistics
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
    runs: list[float]

    @property
    def seconds(self) -> float:
        """Median of the runs."""
        return statistics.median(self.runs)

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


class _DuckDB:
    """DuckDB in memory with the feature rows loaded once (loading is not timed)."""

    def __init__(self, features: pa.Table, names: list[str]) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET threads = 2")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.register("f_arrow", features)
        self.con.execute("CREATE TABLE f AS SELECT * FROM f_arrow")
        self.con.unregister("f_arrow")
        self.cols = ", ".join(
            f'CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 1 HOUR THEN f."{n}" '
            f'END AS "{n}"'
            for n in names
        )

    def join(self, entities: pd.DataFrame) -> tuple[float, pa.Table]:
        self.con.register("e_df", entities)
        self.con.execute(
            "CREATE OR REPLACE TABLE e AS SELECT row_number() OVER () AS ord, * FROM e_df"
        )
        self.con.unregister("e_df")
        started = time.perf_counter()
        result = self.con.sql(
            f"SELECT e.symbol, e.event_timestamp, e.label, {self.cols} FROM e ASOF LEFT JOIN f "
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
    repeats = _env("BENCH_EXPORT_REPEATS", 3)
    defs = market_definitions(f"bench_export_{n_features}", table_prefix=f"bench_v2_{n_features}_")
    features = _features(n_features, defs)
    load_started = time.perf_counter()
    how = _load(settings, defs, features)
    load_s = time.perf_counter() - load_started
    entities = _entities(n_entities, n_features // SYMBOLS)
    subset = entities.iloc[:n_feast]
    names = list(defs.view(VIEW).feature_names)
    refs = [f"{VIEW}:{n}" for n in names]
    labels = LabelSpec(horizon=timedelta(minutes=5))
    duck = _DuckDB(features, names)
    store = PostgresOfflineStore(settings.postgres.dsn, defs)
    _ours(store, entities.iloc[:1000], refs)  # opens the connections the store keeps

    rows = [
        Timing("featurestore (PostgreSQL, LATERAL index-only probes)", n_entities, []),
        Timing("DuckDB ASOF JOIN (in memory)", n_entities, []),
        Timing("featurestore, Feast's subset", n_feast, []),
        Timing("DuckDB, Feast's subset", n_feast, []),
        Timing("Feast get_historical_features", n_feast, []),
        Timing("featurestore + labels (5 min forward return, direction)", n_entities, []),
    ]
    same = True
    # Interleaved: each round runs every engine once, so that load from elsewhere on the
    # machine falls on all of them alike.
    for _ in range(repeats):
        ours_s, ours = _ours(store, entities, refs)
        duck_s, duck_table = duck.join(entities)
        same = same and all(
            ours.column(n)
            .combine_chunks()
            .equals(duck_table.column(n).combine_chunks().cast(ours.schema.field(n).type))
            for n in names
        )
        del ours, duck_table
        rows[0].runs.append(ours_s)
        rows[1].runs.append(duck_s)
        rows[2].runs.append(_ours(store, subset, refs)[0])
        rows[3].runs.append(duck.join(subset)[0])
        rows[4].runs.append(_feast(settings, defs.project, subset, refs))
        rows[5].runs.append(_ours(store, entities, refs, labels)[0])
    store.close()

    ours_full, duck_full, ours_sub, _, feast_sub, _ = rows
    lines = [
        "## Point-in-time export",
        "",
        f"{n_entities:,} entity rows against {n_features:,} feature rows of `{VIEW}` "
        f"({SYMBOLS} symbols, {len(names)} features, TTL 1 h); feature table {how} "
        f"in {load_s:.1f} s. Feast runs on the first {n_feast:,} entity rows only. "
        f"{repeats} rounds, each running every engine once in this order; seconds are medians.",
        "",
        "| engine | entity rows | seconds (median) | runs | rows/s |",
        "| --- | ---: | ---: | --- | ---: |",
        *(
            f"| {t.name} | {t.entity_rows:,} | {t.seconds:.2f} | "
            f"{', '.join(f'{r:.2f}' for r in t.runs)} | {t.rate:,.0f} |"
            for t in rows
        ),
        "",
        f"- vs Feast (same subset): {ours_sub.rate / feast_sub.rate:,.0f}x its rows/s "
        f"(full run: {ours_full.rate / feast_sub.rate:,.0f}x). Target: at least 20x.",
        f"- vs DuckDB (full run): {ours_full.seconds / duck_full.seconds:.2f}x its time "
        f"({duck_full.seconds / ours_full.seconds:.2f}x its speed). Target: within 3x.",
        f"- Results identical to DuckDB's on all {n_entities:,} rows, every round: "
        f"{'yes' if same else 'NO'}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(load_settings()))
