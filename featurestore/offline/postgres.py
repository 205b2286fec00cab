"""The PostgreSQL offline store: point-in-time joins run in the database, streamed in chunks.

Each chunk of entity rows (``chunk_rows``, 100k by default) is copied into a temporary table,
joined on the server (:mod:`featurestore.offline._query`) and copied back as CSV parsed by Arrow;
``parallelism`` chunks run at once on their own connections. Memory stays bounded by
``parallelism + 1`` chunks whatever the number of entity rows, and results come out in entity
row order.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from featurestore.definitions.model import Definitions
from featurestore.errors import (
    BackendUnavailableError,
    ConfigurationError,
    FeatureStoreError,
    ValidationError,
)
from featurestore.offline._copy import copy_in, copy_out
from featurestore.offline._query import ENTITY_TABLE, ViewJoin, arrow_type, join_query
from featurestore.offline.base import OfflineStore, TrainingRequest
from featurestore.offline.entities import (
    EntityKeys,
    EntitySource,
    entity_keys,
    iter_entity_batches,
    warn_naive,
)

__all__ = ["PostgresOfflineStore"]

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class _Plan:
    joins: list[ViewJoin]
    join_key: str
    query: sql.Composed
    schema: pa.Schema
    """``ord`` and the feature columns, as the query returns them."""


class PostgresOfflineStore(OfflineStore):
    """Point-in-time joins against the offline tables of one PostgreSQL database.

    Args:
        dsn: libpq connection string (``settings.postgres.dsn``).
        definitions: The registry's definitions (:func:`featurestore.definitions.load_definitions`).
        chunk_rows: Entity rows per round trip.
        parallelism: Chunks joined at once, each on its own connection.
    """

    def __init__(
        self, dsn: str, definitions: Definitions, *, chunk_rows: int = 100_000, parallelism: int = 2
    ) -> None:
        if chunk_rows < 1 or parallelism < 1:
            raise ValueError("chunk_rows and parallelism must be positive")
        self._dsn = dsn
        self.definitions = definitions
        self.chunk_rows = chunk_rows
        self.parallelism = parallelism

    def plan(self, request: TrainingRequest) -> _Plan:
        """Resolve the requested features into the join (raises on unknown names)."""
        defs = self.definitions
        refs = defs.resolve(request.features, request.feature_service)
        joins: list[ViewJoin] = []
        keys = set()
        for view, features in defs.group_by_view(refs):
            if len(view.entities) != 1:
                raise ConfigurationError(f"view {view.name!r} must have exactly one entity")
            key = defs.entity(view.entities[0]).join_key
            keys.add(key)
            names = tuple(
                f"{view.name}__{f.name}" if request.full_feature_names else f.name for f in features
            )
            joins.append(ViewJoin(view, key, tuple(features), names))
        if len(keys) != 1:
            raise ValidationError(
                f"requested views have different join keys {sorted(keys)}", field="features"
            )
        output = [name for join in joins for name in join.output_names]
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
        return _Plan(joins, keys.pop(), join_query(joins), pa.schema(fields))

    def iter_batches(
        self, entities: EntitySource, request: TrainingRequest
    ) -> Iterator[pa.RecordBatch]:
        plan = self.plan(request)
        batches = _non_empty(
            iter_entity_batches(entities, self.chunk_rows, request.timestamp_column)
        )
        first = next(batches, None)
        if first is None:
            raise ValidationError("no entity rows given", field="entities")
        clash = [n for n in plan.schema.names[1:] if n in first.schema.names]
        if clash:
            raise ValidationError(
                f"entity columns {clash} have the names of requested features", field=clash[0]
            )
        return self._run(plan, request, _chain(first, batches))

    def _run(
        self, plan: _Plan, request: TrainingRequest, batches: Iterator[pa.RecordBatch]
    ) -> Iterator[pa.RecordBatch]:
        connections: queue.SimpleQueue[Conn] = queue.SimpleQueue()
        opened: list[Conn] = []
        pending: list[tuple[pa.RecordBatch, Future[pa.Table]]] = []
        warned = False
        offset = 0

        def work(keys: EntityKeys) -> pa.Table:
            try:
                conn = connections.get_nowait()
            except queue.Empty:
                conn = self._connect()
                opened.append(conn)
            try:
                return _join_chunk(conn, plan, keys)
            finally:
                connections.put(conn)

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
                    yield _attach(*pending.pop(0))
            while pending:
                yield _attach(*pending.pop(0))
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            for conn in opened:
                conn.close()

    def _connect(self) -> Conn:
        try:
            conn = psycopg.connect(self._dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(f"offline store unreachable: {exc}") from exc
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET jit = off")
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (ord bigint, key text, ts timestamptz)"
            ).format(sql.Identifier(ENTITY_TABLE))
        )
        return conn


def _non_empty(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    return (b for b in batches if b.num_rows)


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _join_chunk(conn: Conn, plan: _Plan, keys: EntityKeys) -> pa.Table:
    """Join one chunk; returns the feature columns in the chunk's row order."""
    n = len(keys.key)
    rows = pa.table(
        {"ord": pa.array(np.arange(n, dtype=np.int64)), "key": keys.key, "ts": keys.timestamp}
    )
    rows = rows.take(pc.sort_indices(rows, [("key", "ascending"), ("ts", "ascending")]))
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(ENTITY_TABLE)))
            copy_in(cur, sql.Identifier(ENTITY_TABLE), ["ord", "key", "ts"], rows)
            result = copy_out(cur, plan.query, plan.schema)
    except psycopg.errors.UndefinedTable as exc:
        raise ConfigurationError(
            f"an offline table is missing ({exc.diag.message_primary}); "
            "run `featurestore registry apply`"
        ) from exc
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"offline store failed: {exc}") from exc
    except psycopg.Error as exc:
        raise FeatureStoreError(f"point-in-time join failed: {exc}") from exc
    if result.num_rows != n:
        raise FeatureStoreError(f"join returned {result.num_rows} rows for {n} entity rows")
    ordered = result.take(pc.sort_indices(result.column("ord")))
    return ordered.drop_columns(["ord"])


def _attach(batch: pa.RecordBatch, future: Future[pa.Table]) -> pa.RecordBatch:
    (features,) = future.result().combine_chunks().to_batches()
    return pa.RecordBatch.from_arrays(
        [*batch.columns, *features.columns],
        names=[*batch.schema.names, *features.schema.names],
    )
