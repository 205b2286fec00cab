"""The PostgreSQL offline store: point-in-time joins run in the database, streamed in chunks.

Each chunk of entity rows (``chunk_rows``: 100k rows of a stream, or an even share per
connection of an in-memory input) is sorted by (key, timestamp), copied into a temporary table
in PostgreSQL's binary COPY format, joined on the server (:mod:`featurestore.offline._query`) and
sent back as one binary array per column, read by numpy in place
(:mod:`featurestore.offline._binary`; views with text features fall back to a CSV COPY read by
Arrow). ``parallelism`` chunks run at once on their own connections, which the store keeps for the
next export (:meth:`PostgresOfflineStore.close` closes them), their temporary tables emptied once
a chunk's rows are read. Memory stays bounded by ``parallelism + 1`` chunks in flight whatever the
number of entity rows, and results come out in entity row order.

An export left before its end (the iterator closed, a chunk failed, or
:meth:`JoinedBatches.cancel` from another thread: a gRPC client that cancelled or went away, a
server stopping) cancels the queries of its chunks in flight in PostgreSQL instead of waiting
for them: no query outlives its export by more than a cancel's round trip, and a cancelled
chunk's connection is closed, its temporary table with it.

With ``column_copies`` (:meth:`PostgresOfflineStore.from_settings` sets it), a chunk's entity rows
older than the copies' ``until`` are joined from the tables' columnar copies by merge
(:mod:`featurestore.offline.column_copy`), checked exact once per export; the others go to
PostgreSQL as above.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from contextlib import contextmanager
from copy import copy as shallow_copy
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import FeatureRef
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import ValueType
from featurestore.error_maps import postgres_error
from featurestore.errors import CancelledOperationError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.offline._binary import array_field
from featurestore.offline._binary import decode_arrays
from featurestore.offline._binary import encode_entities
from featurestore.offline._copy import copy_out
from featurestore.offline._query import ENTITY_TABLE
from featurestore.offline._query import LABEL_ENTRY
from featurestore.offline._query import LABEL_EXIT
from featurestore.offline._query import BinaryQuery
from featurestore.offline._query import LabelJoin
from featurestore.offline._query import ViewJoin
from featurestore.offline._query import arrow_type
from featurestore.offline._query import binary_query
from featurestore.offline._query import join_query
from featurestore.offline.base import OfflineStore
from featurestore.offline.base import TrainingRequest
from featurestore.offline.column_copy import ColumnCopy
from featurestore.offline.column_copy import column_copy_root
from featurestore.offline.column_copy import load_copy
from featurestore.offline.entities import EntityKeys
from featurestore.offline.entities import EntitySource
from featurestore.offline.entities import entity_keys
from featurestore.offline.entities import iter_entity_batches
from featurestore.offline.entities import warn_naive
from featurestore.offline.labels import LabelSpec
from featurestore.offline.labels import labels_from_prices
from featurestore.offline.tables import table_identifier

__all__ = ["JoinedBatches", "PostgresOfflineStore"]

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[tuple[object, ...]]

_STREAM_CHUNK_ROWS = 100_000
"""Default chunk of a streamed input (file, batch iterator)."""
_SAID_ROWS = 10_000
"""Exports of at least this many entity rows say at INFO how they were joined (smaller ones,
such as a model's history lookups, at DEBUG)."""
_MIN_SPLIT_ROWS = 5_000
_MAX_SPLIT_ROWS = 250_000
"""Inputs of known size are split across the connections in chunks of this many rows."""
_CANCEL_EVERY_S = 0.5
"""An abandoned export sends its running chunks a cancel this often until they have stopped
(a cancel that lands between two statements of a chunk cancels nothing)."""

_UNIQUE_KEYS = sql.SQL(
    "SELECT array_agg(a.attname::text) FROM pg_index i"
    " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND k.n <= i.indnkeyatts"
    " GROUP BY i.indexrelid"
)


@dataclass(frozen=True)
class _Plan:
    joins: list[ViewJoin]
    join_key: str
    labels: LabelJoin | None
    label_spec: LabelSpec | None
    schema: pa.Schema
    """``ord``, the feature columns and the label prices, as the join query returns them."""

    @property
    def query(self) -> sql.Composed:
        """The join, values as they are (CSV form)."""
        return join_query(self.joins, self.labels)

    @property
    def output_names(self) -> list[str]:
        """Columns added to the entity rows: features, then labels."""
        names = [name for join in self.joins for name in join.output_names]
        return names + list(self.label_spec.columns if self.label_spec else ())


class PostgresOfflineStore(OfflineStore):
    """Point-in-time joins against the offline tables of one PostgreSQL database.

    Args:
        dsn: libpq connection string (``settings.postgres.dsn``).
        definitions: The registry's definitions (:func:`featurestore.definitions.load_definitions`).
        chunk_rows: Entity rows per round trip. By default 100,000 for streamed inputs (files,
            batch iterators), and for a DataFrame or Arrow table an even share per connection
            of up to 250,000 rows: bigger chunks probe the index more densely (neighbouring
            entity rows land on the same index pages), at the cost of memory per chunk.
        parallelism: Chunks joined at once, each on its own connection.
        column_copies: Where the tables' columnar copies are
            (:mod:`featurestore.offline.column_copy`; ``<data_dir>/offline-columns``). Entity
            rows before a copy's ``until`` are joined from it, by merge, while it is exact; None
            joins every row in PostgreSQL.
    """

    def __init__(
        self,
        dsn: str,
        definitions: Definitions,
        *,
        chunk_rows: int | None = None,
        parallelism: int = 2,
        column_copies: Path | None = None,
    ) -> None:
        """Join against ``dsn``'s tables of ``definitions`` (connections opened on first use)."""
        if (chunk_rows is not None and chunk_rows < 1) or parallelism < 1:
            raise ValueError("chunk_rows and parallelism must be positive")
        self._dsn = dsn
        self.definitions = definitions
        self.chunk_rows = chunk_rows
        self.parallelism = parallelism
        self.column_copies = column_copies
        # Idle connections kept between chunks and exports (at most ``parallelism``). Not
        # psycopg_pool: its ConnectionPool connects in background workers that retry, so with
        # PostgreSQL down ``getconn`` waits its whole timeout and then raises PoolTimeout
        # without the cause, where connecting here fails at once naming it (connection
        # refused, password refused: :mod:`featurestore.error_maps.postgres`). A connection is
        # made when none is idle, never waited for, and closed when it failed.
        self._idle: queue.SimpleQueue[Conn] = queue.SimpleQueue()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        definitions: Definitions,
        *,
        chunk_rows: int | None = None,
        parallelism: int = 2,
    ) -> PostgresOfflineStore:
        """The store of ``settings``' database, with its column copies where they are on."""
        return cls(
            settings.postgres.dsn,
            definitions,
            chunk_rows=chunk_rows,
            parallelism=parallelism,
            column_copies=column_copy_root(settings),
        )

    def with_definitions(self, definitions: Definitions) -> PostgresOfflineStore:
        """This store joining with ``definitions`` (applied since); it shares the connections.

        Exports under way on this one finish with the definitions they started with.
        """
        store = shallow_copy(self)
        store.definitions = definitions
        return store

    def close(self) -> None:
        """Close the connections kept between exports (the store stays usable)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def plan(self, request: TrainingRequest) -> _Plan:
        """Resolve the requested features and labels into the join (raises on unknown names)."""
        defs = self.definitions
        refs = defs.resolve(request.features, request.feature_service)
        joins: list[ViewJoin] = []
        keys = set()
        for view, features in defs.group_by_view(refs):
            key = self._join_key(view.name)
            keys.add(key)
            names = tuple(
                FeatureRef(view.name, f.name).column if request.full_feature_names else f.name
                for f in features
            )
            joins.append(ViewJoin(view, key, tuple(features), names))
        labels = self._label_join(request.labels)
        if labels is not None:
            keys.add(labels.join_key)
        if len(keys) != 1:
            raise ValidationError(
                f"requested views have different join keys {sorted(keys)}", field="features"
            )
        output = [name for join in joins for name in join.output_names]
        output += list(request.labels.columns if request.labels else ())
        duplicates = sorted({n for n in output if output.count(n) > 1})
        if duplicates:
            raise ValidationError(
                f"features {duplicates} come from several views; use full feature names",
                field="features",
            )
        fields = [pa.field("ord", pa.int64())] + [
            pa.field(name, arrow_type(f.value_type))
            for join in joins
            for name, f in zip(join.output_names, join.features, strict=True)
        ]
        if labels is not None:
            fields += [pa.field(LABEL_ENTRY, pa.float64()), pa.field(LABEL_EXIT, pa.float64())]
        return _Plan(joins, keys.pop(), labels, request.labels, pa.schema(fields))

    def active_entities(self, view_name: str, since: datetime, limit: int = 100) -> list[str]:
        """The entity keys with rows of ``view_name`` at or after ``since``, the most rows first.

        What a dashboard lists (the symbols trading now) without reading the tables itself.

        Raises:
            NotFoundError: no such view.
            BackendUnavailableError: PostgreSQL cannot be reached.
        """
        view = self.definitions.view(view_name)
        query = sql.SQL(
            "SELECT {key}::text FROM {table} WHERE {ts} >= %s"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT %s"
        ).format(
            key=sql.Identifier(self._join_key(view_name)),
            table=table_identifier(view.source.table),
            ts=sql.Identifier(view.source.timestamp_field),
        )
        try:
            with self._connection() as conn:
                rows = conn.execute(query, (since, limit)).fetchall()
        except psycopg.OperationalError as exc:
            raise postgres_error(exc, f"the offline store, active entities of {view_name}") from exc
        return [str(row[0]) for row in rows]

    def _join_key(self, view_name: str) -> str:
        view = self.definitions.view(view_name)
        if len(view.entities) != 1:
            raise ConfigurationError(f"view {view.name!r} must have exactly one entity")
        return self.definitions.join_key(view)

    def _label_join(self, spec: LabelSpec | None) -> LabelJoin | None:
        if spec is None:
            return None
        view = self.definitions.view(spec.view)
        price = view.feature(spec.price_column)
        if price.value_type not in (ValueType.FLOAT64, ValueType.INT64):
            raise ValidationError(
                f"label price column {view.name}:{price.name} must be numeric, not "
                f"{price.value_type.value}",
                field="labels",
            )
        return LabelJoin(
            view,
            self._join_key(view.name),
            price,
            spec.horizon,
            spec.max_wait,
            spec.max_staleness,
        )

    def iter_batches(self, entities: EntitySource, request: TrainingRequest) -> JoinedBatches:
        """The entity rows' batches with their features (and labels) joined, in input order.

        Closing the iterator before its end, or :meth:`JoinedBatches.cancel`, stops the
        queries in flight.
        """
        plan = self.plan(request)
        batches = _non_empty(
            iter_entity_batches(entities, self._chunk_size(entities), request.timestamp_column)
        )
        first = next(batches, None)
        if first is None:
            raise ValidationError("no entity rows given", field="entities")
        clash = [n for n in plan.output_names if n in first.schema.names]
        if clash:
            raise ValidationError(
                f"entity columns {clash} have the names of requested features or labels",
                field=clash[0],
            )
        stop = _Stop()
        return JoinedBatches(self._run(plan, request, _chain(first, batches), stop), stop)

    def _chunk_size(self, entities: EntitySource) -> int:
        """Rows per chunk: inputs of known size are shared out so that every connection works."""
        if not isinstance(entities, pd.DataFrame | pa.Table):
            return self.chunk_rows or _STREAM_CHUNK_ROWS
        share = max(_MIN_SPLIT_ROWS, math.ceil(len(entities) / self.parallelism))
        return min(self.chunk_rows or _MAX_SPLIT_ROWS, share)

    def _run(
        self,
        plan: _Plan,
        request: TrainingRequest,
        batches: Iterator[pa.RecordBatch],
        stop: _Stop,
    ) -> Iterator[pa.RecordBatch]:
        pending: list[tuple[pa.RecordBatch, Future[pa.Table]]] = []
        warned = False
        offset = 0
        plan = self._with_uniqueness(plan)
        binary = binary_query(plan.joins, plan.labels)
        copies, without = self._copies(plan) if binary is not None else (None, [])

        def in_postgres(keys: EntityKeys) -> pa.Table:
            with self._connection() as conn, stop.running(conn):
                return _join_chunk(conn, plan, binary, keys)

        def work(keys: EntityKeys) -> pa.Table:
            if copies is None:
                return in_postgres(keys)
            return copies.join(keys, plan, in_postgres)

        pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="pit-join")
        try:
            for batch in batches:
                keys = entity_keys(
                    batch,
                    plan.join_key,
                    request.timestamp_column,
                    allow_naive=request.allow_naive_timestamps,
                    row_offset=offset,
                )
                offset += batch.num_rows
                if keys.naive and not warned:
                    warn_naive(request.timestamp_column)
                    warned = True
                pending.append((batch, pool.submit(work, keys)))
                if len(pending) > self.parallelism:
                    yield _attach(*pending.pop(0), plan.label_spec)
            while pending:
                yield _attach(*pending.pop(0), plan.label_spec)
            level = logging.INFO if offset >= _SAID_ROWS else logging.DEBUG
            if copies is not None:
                logger.log(
                    level,
                    "export of %d entity rows: %d merged from the column copies (rows before %s), "
                    "%d joined in PostgreSQL", offset, copies.merged, copies.until_text,
                    offset - copies.merged,
                )  # fmt: skip
            elif without:
                logger.log(
                    level,
                    "export of %d entity rows, all joined in PostgreSQL: no exact column copy "
                    "of %s", offset, without,
                )  # fmt: skip
        finally:
            # Left early (closed, a chunk failed, cancelled): the chunks not started never
            # start, and those running are cancelled in PostgreSQL rather than waited for.
            unfinished = [future for _, future in pending if not future.cancel()]
            while unfinished:
                stop.cancel()
                unfinished = list(wait(unfinished, timeout=_CANCEL_EVERY_S).not_done)
            pool.shutdown(wait=True)

    def _with_uniqueness(self, plan: _Plan) -> _Plan:
        """The plan with each view marked unique when its table forbids ties on (key, ts)."""
        try:
            with self._connection() as conn:
                joins = [replace(j, unique=_unique(conn, j.view, j.join_key)) for j in plan.joins]
                labels = plan.labels
                if labels is not None:
                    labels = replace(labels, unique=_unique(conn, labels.view, labels.join_key))
        except psycopg.OperationalError as exc:
            raise postgres_error(exc, "the offline store, reading the tables' keys") from exc
        return replace(plan, joins=joins, labels=labels)

    def _copies(self, plan: _Plan) -> tuple[_Copies | None, list[str]]:
        """The exact copies of every view of the plan, or None and the views without one.

        None: PostgreSQL joins every row (also with labels, or with copies off).
        """
        if self.column_copies is None or plan.labels is not None:
            return None, []
        try:
            with self._connection() as conn:
                loaded = [
                    load_copy(conn, self.definitions, join.view, self.column_copies)
                    for join in plan.joins
                ]
        except psycopg.Error as exc:
            raise postgres_error(exc, "the offline store, checking the column copies") from exc
        missing = [
            join.view.name
            for join, copy in zip(plan.joins, loaded, strict=True)
            if copy is None or not {f.name for f in join.features} <= set(copy.meta.features)
        ]
        if missing:
            return None, missing
        return _Copies([c for c in loaded if c is not None]), []

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        """An idle connection, or a new one; kept for the next use when the block ends well.

        Closed when the block raised: whatever it raised (a query refused, a copy unreadable, a
        cancel), the connection's state is not known, and no failure leaves one open.
        """
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        idle_ok = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if conn.closed or not idle_ok or self._idle.qsize() >= self.parallelism:
            conn.close()
        else:
            self._idle.put(conn)

    def _connect(self) -> Conn:
        try:
            conn = psycopg.connect(self._dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise postgres_error(exc, "the offline store, connecting") from exc
        try:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute("SET jit = off")
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (ord bigint, key text, ts timestamptz)"
                ).format(sql.Identifier(ENTITY_TABLE))
            )
        except BaseException:
            conn.close()
            raise
        return conn


class _Stop:
    """The connections of one export's chunks running in PostgreSQL, and whether it was stopped.

    Chunks run on the export's worker threads; :meth:`cancel` may come from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[Conn] = set()
        self.stopped = False

    @contextmanager
    def running(self, conn: Conn) -> Iterator[None]:
        """The block runs a chunk's statements on ``conn``; refused once the export stopped."""
        with self._lock:
            if self.stopped:
                raise CancelledOperationError(
                    "the export was cancelled before this chunk was joined"
                )
            self._running.add(conn)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(conn)

    def cancel(self) -> None:
        """Stop the export: chunks not begun are refused, running statements cancelled."""
        with self._lock:
            self.stopped = True
            running = list(self._running)
        for conn in running:
            try:
                conn.cancel_safe(timeout=5.0)
            except (psycopg.Error, OSError) as exc:
                # PostgreSQL away or the connection just closed: the chunk fails on its own.
                logger.debug("cancelling a chunk's query: %s", exc)


class JoinedBatches(Iterator[pa.RecordBatch]):
    """The joined batches of one export (:meth:`PostgresOfflineStore.iter_batches`).

    Iterate on one thread; :meth:`close` there to leave early. :meth:`cancel` may be called from
    any other thread while that thread waits for a chunk: the chunk's query is cancelled in
    PostgreSQL and the waiting ``next`` raises (a cancelled export's error, a
    :class:`~featurestore.errors.FeatureStoreError`); a later :meth:`close` cleans up.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], stop: _Stop) -> None:
        """The batches ``batches`` makes, stopped through ``stop``."""
        self._batches = batches
        self._stop = stop

    def __next__(self) -> pa.RecordBatch:
        """The next joined batch."""
        return next(self._batches)

    def close(self) -> None:
        """Leave the export: chunks not begun never run, running ones are cancelled."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()

    def cancel(self) -> None:
        """From any thread: cancel the export's queries in flight (see the class docstring)."""
        self._stop.cancel()


class _Copies:
    """The columnar copies of a plan's views: entity rows before ``until`` are joined here."""

    def __init__(self, copies: list[ColumnCopy]) -> None:
        self.copies = copies
        earliest = min(copies, key=lambda c: c.meta.until_time)
        self.until = int(earliest.meta.until_time.timestamp() * 1_000_000)
        """The earliest ``until`` of the copies, µs since 1970."""
        self.until_text = earliest.meta.until
        self.merged = 0
        """Entity rows merged so far (chunks run on several threads)."""
        self._lock = threading.Lock()

    def join(
        self, keys: EntityKeys, plan: _Plan, in_postgres: Callable[[EntityKeys], pa.Table]
    ) -> pa.Table:
        """One chunk: rows before ``until`` from the copies, the others by ``in_postgres``."""
        micros = keys.timestamp.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
        settled = micros < self.until
        with self._lock:
            self.merged += int(settled.sum())
        schema = pa.schema([f for f in plan.schema if f.name != "ord"])
        if settled.all():
            return self._join(keys.key, micros, plan, schema)
        if not settled.any():
            return in_postgres(keys)
        here, there = np.flatnonzero(settled), np.flatnonzero(~settled)
        fresh = EntityKeys(keys.key.take(there), keys.timestamp.take(there), keys.naive)
        parts = pa.concat_tables(
            [self._join(keys.key.take(here), micros[here], plan, schema), in_postgres(fresh)]
        )
        position = np.empty(len(micros), dtype=np.int64)
        position[np.concatenate([here, there])] = np.arange(len(micros))
        return parts.take(position)

    def _join(self, key: pa.Array, micros: np.ndarray, plan: _Plan, schema: pa.Schema) -> pa.Table:
        arrays: list[pa.Array] = []
        for join, copy in zip(plan.joins, self.copies, strict=True):
            arrays += copy.join(key, micros, [f.name for f in join.features], join.view.ttl)
        return pa.Table.from_arrays(arrays, schema=schema)


def _unique(conn: Conn, view: FeatureView, join_key: str) -> bool:
    """Whether a unique index of the view's table has only the key and timestamp as keys."""
    allowed = {join_key, view.source.timestamp_field}
    rows = conn.execute(_UNIQUE_KEYS, (view.source.table,)).fetchall()
    return any(set(row[0]) <= allowed for row in rows if isinstance(row[0], list))


def _non_empty(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    return (b for b in batches if b.num_rows)


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _join_chunk(conn: Conn, plan: _Plan, binary: BinaryQuery | None, keys: EntityKeys) -> pa.Table:
    """Join one chunk; returns the feature columns (and label prices) in the chunk's row order."""
    n = len(keys.key)
    order = pc.sort_indices(
        pa.table({"key": keys.key, "ts": keys.timestamp}),
        [("key", "ascending"), ("ts", "ascending")],
    )
    payload = encode_entities(
        order.to_numpy().astype(np.int64), keys.key.take(order), keys.timestamp.take(order)
    )
    empty = sql.SQL("TRUNCATE {}").format(sql.Identifier(ENTITY_TABLE))
    try:
        with conn.cursor() as cur:
            with cur.copy(
                sql.SQL("COPY {} (ord, key, ts) FROM STDIN (FORMAT binary)").format(
                    sql.Identifier(ENTITY_TABLE)
                )
            ) as copy:
                copy.write(payload)
            if binary is None:
                result = copy_out(cur, plan.query, plan.schema)
            else:
                result = _binary_out(cur, binary, plan.schema)
            # Emptied once its rows are read, not at the connection's next chunk: a connection
            # kept idle between exports held its last chunk's rows until then.
            # A chunk that failed before this closes its connection, the table with it.
            cur.execute(empty)
    except psycopg.Error as exc:
        raise postgres_error(exc, "the offline store, a point-in-time join") from exc
    if result.num_rows != n:
        raise FeatureStoreError(f"join returned {result.num_rows} rows for {n} entity rows")
    ords = result.column("ord").to_numpy()
    position = np.empty(n, dtype=np.int64)
    position[ords] = np.arange(n)
    return result.drop_columns(["ord"]).take(position)


def _binary_out(
    cur: psycopg.Cursor[tuple[object, ...]], binary: BinaryQuery, schema: pa.Schema
) -> pa.Table:
    """The join's rows, its columns fetched as one row of binary arrays (no per-row Python)."""
    cur.execute(binary.arrays, binary=True)
    row = cur.fetchone()
    try:
        if row is None:
            raise ValueError("no row of arrays")
        columns = decode_arrays([array_field(field) for field in row], binary.columns)
    except ValueError as exc:
        raise FeatureStoreError(f"point-in-time join returned unexpected rows: {exc}") from exc
    nulls = {name: (columns[mask] >> bit) & 1 == 1 for name, mask, bit in binary.masks}
    arrays = [
        pa.array(columns[field.name], field.type, mask=nulls.get(field.name)) for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _attach(
    batch: pa.RecordBatch, future: Future[pa.Table], labels: LabelSpec | None
) -> pa.RecordBatch:
    result = future.result()
    names = list(result.column_names)
    arrays = [column.combine_chunks() for column in result.columns]
    if labels is not None:
        entry = result.column(LABEL_ENTRY).to_numpy(zero_copy_only=False)
        exit_ = result.column(LABEL_EXIT).to_numpy(zero_copy_only=False)
        keep = [i for i, n in enumerate(names) if n not in (LABEL_ENTRY, LABEL_EXIT)]
        names, arrays = [names[i] for i in keep], [arrays[i] for i in keep]
        for name, values in labels_from_prices(entry, exit_, labels).items():
            names.append(name)
            arrays.append(values)
    return pa.RecordBatch.from_arrays(
        [*batch.columns, *arrays], names=[*batch.schema.names, *names]
    )
