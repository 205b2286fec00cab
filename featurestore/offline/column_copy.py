"""A columnar copy of each offline table's settled past, for point-in-time joins by merge.

PostgreSQL answers a point-in-time join with one index probe per entity row and view (~3 µs of
CPU each). For the rows of a table older than a time ``until`` (the settled past: streams write
at the present), this module keeps the same rows in Arrow files, sorted for
:mod:`featurestore.offline.asof`, and the export reads entity rows before ``until`` from them.

A copy is derived, never authoritative. It is used only while it is exact:

* it was read in one REPEATABLE READ transaction whose snapshot it keeps, and no write committed
  outside that snapshot touched a time before ``until`` (:func:`changes.changed_since
  <featurestore.offline.changes.changed_since>`: the writers record every write's time range);
* the table's storage (partitions and their files) is the one it read: a ``TRUNCATE``, a dropped
  or added partition (retention) or a rewrite invalidates it;
* it is younger than the change log's memory (:data:`~featurestore.offline.changes.KEPT_DAYS`).

Otherwise the export joins in PostgreSQL, as it does for rows at or after ``until``, for labels
and for text features. :func:`refresh_copies` (run by ``featurestore monitor`` and by
``featurestore offline-copy``) rebuilds what is missing, invalid or stale.

On disk, under the root: ``<table>/<build>/`` with ``meta.json``, ``rows.arrow`` (the sort
numbers and the fixed-width features, sorted), ``keys.arrow`` and ``times.arrow``, and
``<table>/current`` naming the build in use (replaced atomically; older builds are removed).
Files are memory-mapped: processes that export share one copy in the page cache.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import ValueType
from featurestore.error_maps.postgres import postgres_errors
from featurestore.offline._binary import FixedColumn
from featurestore.offline._binary import array_field
from featurestore.offline._binary import decode_arrays
from featurestore.offline._query import arrow_type
from featurestore.offline._query import fixed_pg_type
from featurestore.offline._query import null_masked
from featurestore.offline.asof import SortedRows
from featurestore.offline.asof import sort_rows
from featurestore.offline.changes import KEPT_DAYS
from featurestore.offline.changes import TABLE_AND_PARTITIONS
from featurestore.offline.changes import changed_since
from featurestore.offline.changes import prune_changes
from featurestore.offline.changes import storage_of
from featurestore.offline.changes import written_lately
from featurestore.offline.tables import covered_features
from featurestore.offline.tables import table_identifier

__all__ = [
    "ColumnCopy",
    "CopyMeta",
    "build_copy",
    "column_copy_root",
    "exact_copies",
    "load_copy",
    "refresh_copies",
    "settled_until",
]

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[tuple[object, ...]]

SETTLE = timedelta(hours=1)
"""Rows older than this (rounded down to the hour) are the settled past a copy holds."""
STALE_AFTER = timedelta(hours=6)
"""A valid copy whose ``until`` lags the settled past by more than this is rebuilt."""
_MAX_AGE = timedelta(days=KEPT_DAYS - 1)
_KEYS_PER_FETCH = 8
"""Keys' rows fetched at once while building (each key's rows come as one row of arrays)."""
_DTYPES = {"float8": np.float64, "int8": np.int64, "bool": np.bool_, "timestamptz": np.int64}


@dataclass(frozen=True)
class CopyMeta:
    """What a copy holds and the state of PostgreSQL it was read from."""

    view: str
    table: str
    join_key: str
    features: list[str]
    until: str
    """ISO time: the copy holds every row before it."""
    snapshot: str
    """The ``pg_snapshot`` of the read, as text."""
    storage: list[list[int]]
    """:func:`~featurestore.offline.changes.storage_of` the table at the read."""
    built_at: str
    rows: int

    @property
    def until_time(self) -> datetime:
        """``until`` as a datetime."""
        return datetime.fromisoformat(self.until)


@dataclass(frozen=True)
class ColumnCopy:
    """One table's copy, loaded (memory-mapped) and checked exact."""

    meta: CopyMeta
    rows: SortedRows
    values: pa.Table
    """The features, one row per sorted row."""

    def join(
        self, key: pa.Array, micros: np.ndarray, features: list[str], ttl: timedelta
    ) -> list[pa.Array]:
        """``features`` as of each entity row (null where no row is in the TTL)."""
        # Whole microseconds, exactly: through float seconds a TTL such as 1.0086 s becomes
        # 1,008,599 µs, and the row exactly at the TTL bound would be dropped.
        ttl_us = ttl // timedelta(microseconds=1) or None
        positions = self.rows.positions(key, micros, ttl_us)
        return [self.values.column(name).take(positions).combine_chunks() for name in features]


def settled_until(now: datetime | None = None) -> datetime:
    """The settled past's end at ``now``: :data:`SETTLE` before it, down to the hour."""
    end = (now or datetime.now(UTC)).astimezone(UTC) - SETTLE
    return end.replace(minute=0, second=0, microsecond=0)


def build_copy(
    conn: Conn, definitions: Definitions, view: FeatureView, root: Path, until: datetime
) -> CopyMeta:
    """Read the view's rows before ``until`` and make them the table's current copy.

    ``conn`` must be in autocommit mode; the read runs in a REPEATABLE READ transaction.
    """
    src = view.source
    key = definitions.join_key(view)
    features = covered_features(view)
    types = {f.name: f.value_type for f in view.features}
    read = _Read(view, key, [(name, _pg_type(types[name])) for name in features])
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
            snapshot = str(row[0]) if row else ""
            group_keys, parts = _read_groups(conn, read, until)
            storage = storage_of(conn, src.table)
    finally:
        conn.isolation_level = None
    keys = sorted(group_keys)
    code_of = {k: i for i, k in enumerate(keys)}
    lengths = np.array([len(p["ts"]) for p in parts], dtype=np.int64)
    codes = np.repeat(np.array([code_of[k] for k in group_keys], dtype=np.int64), lengths)

    def column(name: str) -> np.ndarray:
        """One column of every group, the groups' own arrays let go (memory stays ~1 copy)."""
        if not parts:
            return np.empty(0, dtype=_DTYPES[read.pg_type(name)])
        return np.concatenate([p.pop(name) for p in parts])

    rows, permutation = sort_rows(
        codes, pa.array(keys, pa.string()), column("ts"), column("created")
    )
    del codes
    masks = {name: column(name)[permutation] for name in read.mask_columns}
    values = pa.table(
        {
            name: pa.array(
                column(name)[permutation],
                arrow_type(types[name]),
                mask=(masks[mask] >> bit) & 1 == 1,
            )
            for name, mask, bit in read.masks
        }
    )
    meta = CopyMeta(
        view=view.name,
        table=src.table,
        join_key=key,
        features=features,
        until=until.astimezone(UTC).isoformat(),
        snapshot=snapshot,
        storage=storage,
        built_at=datetime.now(UTC).isoformat(),
        rows=len(rows.order),
    )
    _write(root, meta, rows, values)
    return meta


def _read_groups(
    conn: Conn, read: _Read, until: datetime
) -> tuple[list[str], list[dict[str, np.ndarray]]]:
    """Each key's arrays, decoded as they arrive: a server-side cursor holds a few keys' bytes."""
    keys: list[str] = []
    parts: list[dict[str, np.ndarray]] = []
    with conn.cursor(name=f"column_copy_{uuid.uuid4().hex[:8]}") as cursor:
        cursor.itersize = _KEYS_PER_FETCH
        cursor.execute(read.query, (until,), binary=True)
        for group in cursor:
            keys.append(str(group[0]))
            parts.append(decode_arrays([array_field(f) for f in group[1:]], read.columns))
    return keys, parts


class _Read:
    """The query that reads a table's past: per key, one binary array per column.

    Values come as never-null fixed-width arrays (nulls as zeros) with the nulls as bits of
    ``bigint`` mask columns (:func:`~featurestore.offline._query.null_masked`), so that
    :func:`~featurestore.offline._binary.decode_arrays` reads every array in place.
    """

    def __init__(self, view: FeatureView, key: str, features: list[tuple[str, str]]) -> None:
        src = view.source
        masked = null_masked(features, sql.Identifier)
        self.columns = [
            FixedColumn("ts", "timestamptz"),
            FixedColumn("created", "timestamptz"),
            *masked.columns,
        ]
        self.masks = masked.bits
        """``(feature, mask column, bit)`` for every feature."""
        self.mask_columns = sorted({mask for _, mask, _ in masked.bits})
        selected = [
            sql.Identifier(src.timestamp_field),
            sql.Identifier(src.created_timestamp_column),
            *masked.values,
            *masked.masks,
        ]
        self.query = sql.SQL(
            "SELECT {key}, {aggregates} FROM {table} WHERE {ts} < %s GROUP BY {key}"
        ).format(
            key=sql.Identifier(key),
            aggregates=sql.SQL(", ").join(
                sql.SQL("array_send(array_agg({}))").format(column) for column in selected
            ),
            table=table_identifier(src.table),
            ts=sql.Identifier(src.timestamp_field),
        )

    def pg_type(self, name: str) -> str:
        """The PostgreSQL type of a column read."""
        return next(c.pg_type for c in self.columns if c.name == name)


def _pg_type(value_type: ValueType) -> str:
    pg_type = fixed_pg_type(value_type)
    if pg_type is None:
        raise ValueError(f"{value_type} is not fixed-width")
    return pg_type


def _table_dir(root: Path, table: str) -> Path:
    return root / table


def _write(root: Path, meta: CopyMeta, rows: SortedRows, values: pa.Table) -> None:
    table_dir = _table_dir(root, meta.table)
    build = uuid.uuid4().hex
    target = table_dir / build
    target.mkdir(parents=True)
    with pa.OSFile(str(target / "rows.arrow"), "wb") as sink:
        table = values.add_column(0, "order", pa.array(rows.order, pa.int64()))
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    _write_column(target / "keys.arrow", "key", rows.keys)
    _write_column(target / "times.arrow", "time", pa.array(rows.times, pa.int64()))
    (target / "meta.json").write_text(json.dumps(asdict(meta)))
    pointer = table_dir / f".current.{build}"
    pointer.write_text(build)
    pointer.replace(table_dir / "current")
    for old in table_dir.iterdir():
        if old.is_dir() and old.name != build:
            shutil.rmtree(old, ignore_errors=True)  # mapped files stay readable until unmapped


def _write_column(path: Path, name: str, array: pa.Array) -> None:
    table = pa.table({name: array})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _current(root: Path, table: str) -> tuple[Path, CopyMeta] | None:
    table_dir = _table_dir(root, table)
    try:
        build = (table_dir / "current").read_text().strip()
        meta = CopyMeta(**json.loads((table_dir / build / "meta.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return table_dir / build, meta


def _exact(conn: Conn, meta: CopyMeta, view: FeatureView, join_key: str) -> bool:
    if meta.view != view.name or meta.join_key != join_key:
        return False
    if datetime.now(UTC) - datetime.fromisoformat(meta.built_at) > _MAX_AGE:
        return False
    if storage_of(conn, meta.table) != meta.storage:
        return False
    return not changed_since(conn, meta.table, meta.snapshot, meta.until_time)


def load_copy(
    conn: Conn, definitions: Definitions, view: FeatureView, root: Path
) -> ColumnCopy | None:
    """The view's current copy when it is exact, memory-mapped; None otherwise."""
    current = _current(root, view.source.table)
    if current is None:
        return None
    path, meta = current
    if not _exact(conn, meta, view, definitions.join_key(view)):
        return None
    try:
        rows = _read(path / "rows.arrow")
        keys = _read(path / "keys.arrow").column("key").combine_chunks()
        times = _read(path / "times.arrow").column("time").to_numpy()
    except (OSError, pa.ArrowInvalid, KeyError):
        return None  # removed by a refresh meanwhile: the next export reads the new one
    order = rows.column("order").to_numpy()
    return ColumnCopy(meta, SortedRows(keys, times, order), rows.drop_columns(["order"]))


def column_copy_root(settings: Settings) -> Path | None:
    """Where the copies are (``<data_dir>/offline-columns``), or None where they are off."""
    if not settings.postgres.column_copies:
        return None
    return settings.data_dir.resolve() / "offline-columns"


def refresh_copies(
    dsn: str,
    definitions: Definitions,
    root: Path,
    now: datetime | None = None,
    *,
    max_rows: int = 20_000_000,
    rebuild: bool = False,
    quiet: timedelta = timedelta(minutes=10),
) -> list[CopyMeta]:
    """Rebuild the copies that are missing, no longer exact or stale; returns those built.

    ``rebuild``: every copy, exact or not (after rows were written by hand, bypassing the
    change log). A table whose past was written less than ``quiet`` ago (a backfill under way)
    waits for a later refresh, unless ``rebuild``: a copy built now would be retired at once.

    A table estimated (``pg_class.reltuples``) to hold more than ``max_rows`` is not copied, with
    a warning: a build holds the whole copy in memory (~200 bytes a row at its peak with 10
    features).

    Raises:
        BackendUnavailableError: PostgreSQL cannot be reached (or failed during a read).
    """
    with postgres_errors("the offline store, refreshing the column copies"):
        return _refresh(dsn, definitions, root, settled_until(now), max_rows, rebuild, quiet)


def _refresh(
    dsn: str,
    definitions: Definitions,
    root: Path,
    until: datetime,
    max_rows: int,
    rebuild: bool,
    quiet: timedelta,
) -> list[CopyMeta]:
    built = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET jit = off")
        prune_changes(conn)
        for view in definitions.views:
            if not covered_features(view):
                continue
            rows = _estimated_rows(conn, view.source.table)
            if rows is None:
                continue  # no table yet
            current = _current(root, view.source.table)
            join_key = definitions.join_key(view)
            if (
                not rebuild
                and current is not None
                and _exact(conn, current[1], view, join_key)
                and until - current[1].until_time <= STALE_AFTER
            ):
                continue
            if not rebuild and written_lately(conn, view.source.table, until, quiet):
                logger.info(
                    "column copy of %s: its past is being written (a backfill?); rebuilt once "
                    "no write has touched it for %s", view.name, quiet,
                )  # fmt: skip
                continue
            if rows > max_rows:
                logger.warning(
                    "column copy of %s: not built: ~%d rows, over the %d of "
                    "FEATURESTORE_POSTGRES__COLUMN_COPY_MAX_ROWS; PostgreSQL joins all its rows",
                    view.name, rows, max_rows,
                )  # fmt: skip
                continue
            try:
                built.append(build_copy(conn, definitions, view, root, until))
            except ValueError as exc:  # rows this copy cannot hold: the others are still built
                logger.warning("column copy of %s: not built: %s", view.name, exc)
    return built


def exact_copies(dsn: str, definitions: Definitions, root: Path) -> list[CopyMeta]:
    """The copies an export would use now: those of ``definitions``' views that are exact."""
    exact = []
    with (
        postgres_errors("the offline store, checking the column copies"),
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        for view in definitions.views:
            current = _current(root, view.source.table)
            join_key = definitions.join_key(view)
            if current is not None and _exact(conn, current[1], view, join_key):
                exact.append(current[1])
    return exact


def _estimated_rows(conn: Conn, table: str) -> int | None:
    """The planner's estimate of the table's rows (partitions summed); None: no such table."""
    row = conn.execute(
        f"SELECT sum(greatest(c.reltuples, 0))::int8 FROM pg_class c WHERE {TABLE_AND_PARTITIONS}",
        (table, table),
    ).fetchone()
    return None if row is None or row[0] is None else int(str(row[0]))
