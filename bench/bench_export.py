"""Point-in-time export: this store vs Feast's get_historical_features vs DuckDB's ASOF JOIN.

Sizes come from environment variables (defaults are the issue's):

* ``BENCH_EXPORT_ENTITY_ROWS`` (1,000,000): entity rows exported by this store and DuckDB.
* ``BENCH_EXPORT_FEATURE_ROWS`` (5,000,000): feature rows of the ``bars_1m`` view.
* ``BENCH_EXPORT_FEAST_ROWS`` (20,000): entity rows given to Feast, a subset, because Feast
  uploads entity rows with one INSERT per row and joins every entity row to every feature row of
  its symbol within the TTL; this store runs on the same subset too, for a like-for-like figure.
* ``BENCH_EXPORT_REPEATS`` (3): rounds; each runs every engine once, medians are reported.
* ``BENCH_EXPORT_SPARK`` (1): also run the Spark export (:mod:`processors.spark.export`,
  ``local[2]``) on the same entity rows, read from a Parquet file, its rows compared with the
  PostgreSQL export's; 0 leaves it out. Its session starts before the rounds (not timed).

The feature table is built once per size (``bench_v2_<rows>_bars_1m``, in the layout of
:mod:`featurestore.offline.tables`: primary key covering the features) and reused by later runs;
it is vacuumed after loading, as autovacuum does to a table the processors write. DuckDB runs in
memory on the same rows (loading them into DuckDB is not timed). The store runs twice: as users
get it (``column_copies`` on: the table's column copy, :mod:`featurestore.offline.column_copy`,
built before the rounds as DuckDB's load is, and its build time reported; every entity row here is
in the settled past, so all are merged from it) and with every row probed in PostgreSQL (no copy:
what rows of the last hour, labels and text features get). The store also runs with labels
(5-minute forward return and direction: two more index probes per row on the same table).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg.conninfo import make_conninfo

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.definitions.feast_codec import feature_store
from featurestore.offline import LabelSpec
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline._copy import copy_in
from featurestore.offline.column_copy import refresh_copies
from featurestore.offline.tables import ensure_partitions
from featurestore.offline.tables import table_identifier
from processors.spark.export import export_parquet_spark

START_US = 1_704_067_200_000_000  # 2024-01-01T00:00Z
MINUTE_US = 60_000_000
SYMBOLS = 100
VIEW = "bars_1m"


@dataclass
class Timing:
    name: str
    entity_rows: int
    runs: list[float]
    cpu: list[float] = field(default_factory=list)
    """CPU seconds per run: this process plus the store's PostgreSQL backends, when known."""

    @property
    def cpu_seconds(self) -> float | None:
        """Median CPU seconds, or None when not measured."""
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def seconds(self) -> float:
        """Median of the runs."""
        return statistics.median(self.runs)

    @property
    def rate(self) -> float:
        return self.entity_rows / self.seconds


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class _Cpu:
    """CPU seconds used by this process and by given PostgreSQL backends (a local server).

    Wall time on a machine shared with other work measures the machine's load as much as the
    engines; CPU time is what each engine itself consumed, so it is reported next to it.
    """

    def __init__(self, backend_pids: list[int]) -> None:
        self._stats = [Path(f"/proc/{pid}/stat") for pid in backend_pids]
        self._tick = os.sysconf("SC_CLK_TCK")

    def available(self) -> bool:
        return all(path.exists() for path in self._stats)

    def now(self) -> float:
        ticks = 0
        for path in self._stats:
            fields = path.read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return time.process_time() + ticks / self._tick


def _measure(cpu: _Cpu, fn: Callable[[], T]) -> tuple[float, float | None, T]:
    """Wall seconds, CPU seconds (None when the backends are not on this machine), result."""
    cpu_started, started = cpu.now() if cpu.available() else None, time.perf_counter()
    result = fn()
    wall = time.perf_counter() - started
    used = cpu.now() - cpu_started if cpu_started is not None and cpu.available() else None
    return wall, used, result


def _backend_pids(settings: Settings, application_name: str) -> list[int]:
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return [int(row[0]) for row in rows]


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
) -> pa.Table:
    return store.to_arrow(entities, TrainingRequest(features=refs, labels=labels))


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

    def load(self, entities: pd.DataFrame) -> None:
        self.con.register("e_df", entities)
        self.con.execute(
            "CREATE OR REPLACE TABLE e AS SELECT row_number() OVER () AS ord, * FROM e_df"
        )
        self.con.unregister("e_df")

    def join(self) -> pa.Table:
        return self.con.sql(
            f"SELECT e.symbol, e.event_timestamp, e.label, {self.cols} FROM e ASOF LEFT JOIN f "
            "ON e.symbol = f.symbol AND e.event_timestamp >= f.event_timestamp ORDER BY e.ord"
        ).to_arrow_table()


def _feast(settings: Settings, project: str, entities: pd.DataFrame, refs: list[str]) -> float:
    with feature_store(settings, project) as fs:
        started = time.perf_counter()
        fs.get_historical_features(entity_df=entities, features=refs).to_arrow()
        return time.perf_counter() - started


class _Spark:
    """The Spark export of the same entity rows, from a Parquet file; its session kept warm."""

    def __init__(self, settings: Settings, defs: Definitions, entities: pd.DataFrame) -> None:
        self.settings, self.defs = settings, defs
        self.folder = settings.data_dir.resolve() / "bench" / "export_spark"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.entities = self.folder / "entities.parquet"
        table = pa.Table.from_pandas(entities, preserve_index=False)
        pq.write_table(table, self.entities, coerce_timestamps="us")

    def export(self, refs: list[str]) -> pa.Table:
        out = self.folder / "out"
        export_parquet_spark(
            self.settings,
            self.defs,
            self.entities,
            TrainingRequest(features=refs),
            out,
            master="local[2]",
        )
        return pq.read_table(out)


T = TypeVar("T")


def run(settings: Settings) -> str:
    n_entities = _env("BENCH_EXPORT_ENTITY_ROWS", 1_000_000)
    n_features = _env("BENCH_EXPORT_FEATURE_ROWS", 5_000_000)
    n_feast = min(_env("BENCH_EXPORT_FEAST_ROWS", 20_000), n_entities)
    repeats = _env("BENCH_EXPORT_REPEATS", 3)
    with_spark = bool(_env("BENCH_EXPORT_SPARK", 1))
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
    application_name = f"bench_export_{uuid.uuid4().hex[:8]}"
    store = PostgresOfflineStore(
        make_conninfo(settings.postgres.dsn, application_name=application_name), defs
    )
    copies_root = Path(tempfile.mkdtemp(prefix="bench-export-copies-"))
    copy_started = time.perf_counter()
    built = refresh_copies(settings.postgres.dsn, defs, copies_root, quiet=timedelta(0))
    copy_s = time.perf_counter() - copy_started
    copy_rows = sum(meta.rows for meta in built)
    copy_name = f"{application_name}_copy"
    merged = PostgresOfflineStore(
        make_conninfo(settings.postgres.dsn, application_name=copy_name),
        defs,
        column_copies=copies_root,
    )
    _ours(merged, entities.iloc[:1_000], refs)
    merged_cpu = _Cpu(_backend_pids(settings, copy_name))
    # Opens every connection the store keeps, so that the CPU of all its backends is counted:
    # 1,000 rows made one chunk, so the second backend (half the probes) was left out of the
    # "CPU s" column until 2026-12-04.
    _ours(store, entities.iloc[: 2 * store.parallelism * 5_000], refs)
    backends = _backend_pids(settings, application_name)
    if len(backends) != store.parallelism:
        raise RuntimeError(f"{len(backends)} backends open, not {store.parallelism}")
    ours_cpu, duck_cpu = _Cpu(backends), _Cpu([])
    spark = _Spark(settings, defs, entities) if with_spark else None
    if spark is not None:
        spark.export(refs)  # starts the session and warms its JVM (not timed)

    rows = [
        Timing(
            "featurestore (column copy of the settled past, merge; the default)", n_entities, []
        ),
        Timing("featurestore (PostgreSQL, LATERAL index-only probes)", n_entities, []),
        Timing("DuckDB ASOF JOIN (in memory, 2 threads)", n_entities, []),
        Timing("featurestore, Feast's subset", n_feast, []),
        Timing("DuckDB, Feast's subset", n_feast, []),
        Timing("Feast get_historical_features", n_feast, []),
        Timing("featurestore + labels (5 min forward return, direction)", n_entities, []),
    ]
    spark_row = Timing("featurestore on Spark (local[2], JDBC reads in 8 slices)", n_entities, [])

    def record(row: Timing, cpu: _Cpu, fn: Callable[[], T]) -> T:
        wall, used, result = _measure(cpu, fn)
        row.runs.append(wall)
        if used is not None:
            row.cpu.append(used)
        return result

    same = spark_same = True
    load_before = os.getloadavg()[0]
    # Interleaved: each round runs every engine once, so that load from elsewhere on the
    # machine falls on all of them alike.
    for _ in range(repeats):
        ours = record(rows[0], merged_cpu, lambda: _ours(merged, entities, refs))
        probed = record(rows[1], ours_cpu, lambda: _ours(store, entities, refs))
        duck.load(entities)
        duck_table = record(rows[2], duck_cpu, duck.join)
        same = same and all(
            ours.column(n)
            .combine_chunks()
            .equals(duck_table.column(n).combine_chunks().cast(ours.schema.field(n).type))
            and probed.column(n).combine_chunks().equals(ours.column(n).combine_chunks())
            for n in names
        )
        del duck_table, probed
        if spark is not None:
            started = time.perf_counter()
            spark_table = spark.export(refs)
            spark_row.runs.append(time.perf_counter() - started)
            spark_same = spark_same and all(
                spark_table.column(n).combine_chunks().equals(ours.column(n).combine_chunks())
                for n in names
            )
            del spark_table
        del ours
        record(rows[3], merged_cpu, lambda: _ours(merged, subset, refs))
        duck.load(subset)
        record(rows[4], duck_cpu, duck.join)
        rows[5].runs.append(_feast(settings, defs.project, subset, refs))
        record(rows[6], ours_cpu, lambda: _ours(store, entities, refs, labels))
    store.close()
    merged.close()
    shutil.rmtree(copies_root, ignore_errors=True)
    load_after = os.getloadavg()[0]

    ours_full, probes_full, duck_full, ours_sub, _, feast_sub, _ = rows
    if spark is not None:
        rows.append(spark_row)
    lines = [
        "## Point-in-time export",
        "",
        f"{n_entities:,} entity rows against {n_features:,} feature rows of `{VIEW}` "
        f"({SYMBOLS} symbols, {len(names)} features, TTL 1 h); feature table {how} "
        f"in {load_s:.1f} s; its column copy (the rows before {built[0].until if built else '-'}"
        f", {copy_rows:,} rows) built in {copy_s:.1f} s before the rounds, as DuckDB's load is. "
        f"Feast runs on the first {n_feast:,} entity rows only. "
        f"{repeats} rounds, each running every engine once in this order; seconds are medians. "
        f"Load average (1 min) {load_before:.1f} before and {load_after:.1f} after, on "
        f"{os.cpu_count()} cores: other work on the machine slows every engine alike.",
        "",
        "| engine | entity rows | seconds (median) | runs | rows/s | CPU s (median) |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
        *(
            f"| {t.name} | {t.entity_rows:,} | {t.seconds:.2f} | "
            f"{', '.join(f'{r:.2f}' for r in t.runs)} | {t.rate:,.0f} | "
            f"{'n/a' if t.cpu_seconds is None else f'{t.cpu_seconds:.2f}'} |"
            for t in rows
        ),
        "",
        "CPU s: CPU time used by the run, this process's threads plus (for featurestore) its "
        "PostgreSQL backends; n/a where it was not measured (Feast opens connections of its own). "
        "It grows far less with the load of the machine than wall time does.",
        "",
        f"- vs Feast (same subset): {ours_sub.rate / feast_sub.rate:,.0f}x its rows/s "
        f"(full run: {ours_full.rate / feast_sub.rate:,.0f}x). Target: at least 20x.",
        f"- vs DuckDB (full run): {ours_full.seconds / duck_full.seconds:.2f}x its time "
        f"({duck_full.seconds / ours_full.seconds:.2f}x its speed); per round: "
        + ", ".join(f"{a / b:.2f}x" for a, b in zip(ours_full.runs, duck_full.runs, strict=True))
        + ". Target: within 2x in every round."
        + (
            f" CPU time: {ours_full.cpu_seconds / duck_full.cpu_seconds:.2f}x DuckDB's."
            if ours_full.cpu_seconds and duck_full.cpu_seconds
            else ""
        ),
        f"- The probes in PostgreSQL (no copy): {probes_full.seconds / duck_full.seconds:.2f}x "
        "DuckDB's time; per round: "
        + ", ".join(f"{a / b:.2f}x" for a, b in zip(probes_full.runs, duck_full.runs, strict=True))
        + f"; the copy's merge is {probes_full.seconds / ours_full.seconds:.1f}x faster.",
        f"- Results identical to DuckDB's and to the probes' on all {n_entities:,} rows, every "
        "round: "
        f"{'yes' if same else 'NO'}.",
    ]
    if spark is not None:
        lines.append(
            f"- Spark export (its CPU not measured: a JVM beside this process): "
            f"{spark_row.seconds:.2f} s median, {spark_row.seconds / probes_full.seconds:.2f}x the "
            f"PostgreSQL export's time; rows identical to it, every round: "
            f"{'yes' if spark_same else 'NO'}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(load_settings()))
