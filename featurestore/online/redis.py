"""The Redis online store, in Feast's layout (see :mod:`featurestore.online.layout`).

One Redis server, or a Redis Cluster (``FEATURESTORE_REDIS__CLUSTER``): the keys are Feast's
(no hash tag, so that Feast's SDK reads the same rows), spread over the masters by their slots.

Writes are write-if-newer per (entity, view), atomically on the server (a Lua script compares the
stored ``_ts:view``), so a late or replayed row never regresses a value; a row with the same event
time replaces the stored one (a recomputed row wins). A row replaces its view's whole row: a
feature it lacks is written null, so no value of an older row outlives it. The key expires at the
newest row's event time + its view's TTL + ``FEATURESTORE_REDIS__KEPT_PAST_TTL_S`` (a day by
default): until then a row past its TTL is read OUTSIDE_MAX_AGE with its last value and event
time, so that an entity gone quiet is told from one never written (NOT_FOUND). Writes go through
redis-py in pipelined batches: on a cluster, redis-py's cluster pipeline sends each master its
part and follows MOVED/ASK; the script is called by its SHA and loaded again where a node lacks it
(a promoted replica has an empty script cache).

Reads go through the store's :class:`~featurestore.online.rows.RowReader` (one HMGET per entity
key, one pipelined round trip per node, the client-side cache in front when configured): the same
path serves GetOnlineFeatures' raw encoder (:attr:`RedisOnlineStore.rows`) and :meth:`read`,
which Predict and the general path use.

Errors of redis-py are translated at this boundary: connection errors, timeouts and a cluster
without a serving master become :class:`BackendUnavailableError`, and so does a read answered
with a passing state (``LOADING`` while a restarted Redis loads its data, ``BUSY``, ...:
:data:`~featurestore.online.rows.PASSING_STATES`), anything else :class:`FeatureStoreError`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pyarrow as pa
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.exceptions
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from featurestore.config import RedisSettings
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.online._lua import WRITE_IF_NEWER_LUA
from featurestore.online.base import EntityKey
from featurestore.online.base import FeatureCatalog
from featurestore.online.base import FeatureRef
from featurestore.online.base import FeatureRow
from featurestore.online.base import FeatureStatus
from featurestore.online.base import FeatureViewSpec
from featurestore.online.base import OnlineFeatures
from featurestore.online.base import WriteResult
from featurestore.online.cluster import ClusterRedis
from featurestore.online.layout import encode_timestamp
from featurestore.online.layout import encode_value
from featurestore.online.layout import encode_values
from featurestore.online.layout import feature_field
from featurestore.online.layout import redis_key
from featurestore.online.layout import timestamp_field
from featurestore.online.layout import timestamp_nanos
from featurestore.online.pipelined import PipelinedRedis
from featurestore.online.pipelined import RedisAccess
from featurestore.online.reading import ReadPlan
from featurestore.online.row_cache import RowCache
from featurestore.online.rows import RowBatch
from featurestore.online.rows import RowClient
from featurestore.online.rows import RowReader
from featurestore.online.rows import SingleRedis
from featurestore.online.rows import read_failure

__all__ = [
    "WRITE_IF_NEWER_LUA",
    "RedisOnlineStore",
    "RedisOnlineWriter",
    "row_client",
    "table_write_args",
]

_BATCH_ROWS = 500
_SHA = hashlib.sha1(WRITE_IF_NEWER_LUA.encode()).hexdigest()
_LOST_SCRIPT = "online store (Redis) lost the write script twice"
_UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
)


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except redis.exceptions.AuthenticationError as exc:
        # A subclass of ConnectionError, but waiting does not fix a wrong password.
        raise ConfigurationError(
            f"online store (Redis) refused the credentials while {action}: {exc}"
        ) from exc
    except _UNAVAILABLE as exc:
        raise BackendUnavailableError(
            f"online store (Redis) unavailable while {action}: {exc}"
        ) from exc
    except redis.RedisError as exc:
        raise FeatureStoreError(f"online store (Redis) failed while {action}: {exc}") from exc


def view_key(view: FeatureViewSpec, entity: EntityKey, project: str) -> bytes:
    """The Redis key of ``entity`` for ``view``: only the view's join keys count."""
    return redis_key(view.key_of(entity), project)


def write_args(
    row: FeatureRow, catalog: FeatureCatalog, kept_past_ttl: timedelta = timedelta(0)
) -> tuple[bytes, list[bytes | str]]:
    """The key and script arguments that write ``row``, kept ``kept_past_ttl`` past its TTL.

    ``kept_past_ttl`` is the writers' setting (``RedisSettings.kept_past_ttl``); 0, the default
    here, lets the key expire with the TTL.
    """
    view = catalog.view(row.view)
    seconds, nanos = timestamp_nanos(row.event_time)
    expire_at = ""
    if view.ttl is not None:
        expire_at = str(int((row.event_time + view.ttl + kept_past_ttl).timestamp() * 1000))
    args: list[bytes | str] = [
        timestamp_field(view.name),
        encode_timestamp(row.event_time),
        str(seconds),
        str(nanos),
        expire_at,
    ]
    for name, value in row.values.items():
        try:
            spec = view.feature(name)
        except FeatureStoreError as exc:
            raise ValidationError(str(exc), field="values") from exc
        args += (feature_field(view.name, name), encode_value(value, spec.dtype))
    args += _absent_fields(view, row.values)
    return view_key(view, row.entity, catalog.project), args


def _absent_fields(view: FeatureViewSpec, names: Iterable[str]) -> list[bytes]:
    """Field, null pairs of the view's features not in ``names``.

    A row replaces the whole stored row of its view: a feature it lacks is null in it, never
    the value an older row left in the hash (served PRESENT with the newer row's event time).
    """
    given = set(names)
    out: list[bytes] = []
    for spec in view.features:
        if spec.name not in given:
            out += (feature_field(view.name, spec.name), b"")
    return out


def table_write_args(
    table: pa.Table,
    view_name: str,
    features: Sequence[str],
    join_key: str,
    catalog: FeatureCatalog,
    kept_past_ttl: timedelta = timedelta(0),
) -> list[tuple[bytes, list[bytes | str]]]:
    """:func:`write_args` of every row of ``table``, the same bytes, built column by column.

    ``table``: rows of the view (its join key, ``event_timestamp`` and a column per name of
    ``features``). The processors write each batch's latest rows so: a protobuf message per
    value was most of the Redis write's cost.
    """
    view = catalog.view(view_name)
    stamps = table.column("event_timestamp")
    if stamps.type != pa.timestamp("us", tz="UTC"):
        rows = [
            FeatureRow(view_name, EntityKey((join_key,), (r[join_key],)), r["event_timestamp"],
                       {name: r[name] for name in features})
            for r in table.to_pylist()
        ]  # fmt: skip
        return [write_args(row, catalog, kept_past_ttl) for row in rows]
    try:
        specs = [view.feature(name) for name in features]
    except FeatureStoreError as exc:
        raise ValidationError(str(exc), field="values") from exc
    ts_field = timestamp_field(view.name)
    ttl_us = None if view.ttl is None else (view.ttl + kept_past_ttl) // timedelta(microseconds=1)
    fields = [feature_field(view.name, name) for name in features]
    values = [encode_values(table.column(spec.name), spec.dtype) for spec in specs]
    absent = _absent_fields(view, features)
    keys = table.column(join_key).to_pylist()
    out: list[tuple[bytes, list[bytes | str]]] = []
    for i, micros in enumerate(stamps.cast(pa.int64()).to_pylist()):
        seconds, nanos = micros // 1_000_000, micros % 1_000_000 * 1000
        expire_at = "" if ttl_us is None else str(int((micros + ttl_us) / 10**6 * 1000))
        args: list[bytes | str] = [
            ts_field, Timestamp(seconds=seconds, nanos=nanos).SerializeToString(),
            str(seconds), str(nanos), expire_at,
        ]  # fmt: skip
        for field, column in zip(fields, values, strict=True):
            args += (field, column[i])
        args += absent
        out.append((view_key(view, EntityKey((join_key,), (keys[i],)), catalog.project), args))
    return out


def _chunks(rows: Iterable[FeatureRow]) -> Iterator[list[FeatureRow]]:
    batch: list[FeatureRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _client_kwargs(settings: RedisSettings, timeout_s: float) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "db": settings.db,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        **settings.client_kwargs(),
    }


def _counted(results: Sequence[Any]) -> WriteResult:
    accepted = sum(int(r) for r in results)
    return WriteResult(written=accepted, stale=len(results) - accepted)


def _no_script(results: Sequence[Any]) -> list[int]:
    """The rows whose node did not know the script (NOSCRIPT); other errors raise."""
    missing = []
    for i, result in enumerate(results):
        if isinstance(result, redis.exceptions.NoScriptError):
            missing.append(i)
        elif isinstance(result, Exception):
            raise result
    return missing


class _ScriptedBatch:
    """One batch of prepared writes, sent as EVALSHA until every row has its reply.

    What both writers (asyncio and blocking) do between their pipelines: a row whose node answered
    NOSCRIPT is sent again once the script is loaded again; the caller gives up after a second
    pipeline (:data:`_LOST_SCRIPT`).
    """

    def __init__(self, prepared: Sequence[tuple[bytes, list[bytes | str]]]) -> None:
        """Every row of ``prepared`` still to send."""
        self._prepared = prepared
        self._todo = list(range(len(prepared)))
        self.results: list[Any] = [None] * len(prepared)
        """Each row's reply (1 kept, 0 stale), in the order of ``prepared``."""

    def queue(self, pipe: Any) -> None:
        """Queue on ``pipe`` (redis-py's, asyncio or blocking) an EVALSHA per row still to send."""
        for i in self._todo:
            key, args = self._prepared[i]
            pipe.execute_command("EVALSHA", _SHA, 1, key, *args)

    def answered(self, replies: Sequence[Any]) -> bool:
        """Keep the replies to the rows last queued; whether every row has its reply now.

        Raises the first error other than NOSCRIPT.
        """
        for i, reply in zip(self._todo, replies, strict=True):
            self.results[i] = reply
        self._todo = [self._todo[j] for j in _no_script(replies)]
        return not self._todo


def row_client(
    settings: RedisSettings,
    *,
    timeout_s: float,
    tracking: bool,
    tracer: trace.Tracer | None = None,
) -> RowClient:
    """The read path's client: one shared connection, or one per master of a cluster."""
    if settings.cluster:
        return ClusterRedis(
            settings.startup_nodes,
            timeout_s=timeout_s,
            tracking=tracking,
            tracer=tracer,
            access=RedisAccess.from_settings(settings),
        )
    return SingleRedis(
        PipelinedRedis(
            settings.host,
            settings.port,
            settings.db,
            timeout_s=timeout_s,
            tracking=tracking,
            tracer=tracer,
            access=RedisAccess.from_settings(settings),
        )
    )


class RedisOnlineStore:
    """The asyncio online store the gRPC service reads (and tests write) through."""

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.RedisCluster,
        catalog: FeatureCatalog,
        rows: RowReader,
        *,
        kept_past_ttl: timedelta,
    ) -> None:
        """``client`` writes (rows kept ``kept_past_ttl`` past their TTL), ``rows`` reads."""
        self._client = client
        self._catalog = catalog
        self._rows = rows
        self._kept_past_ttl = kept_past_ttl
        self._loaded = False
        """Whether the write script was loaded (SCRIPT LOAD; on every master of a cluster)."""

    @classmethod
    def from_settings(
        cls,
        settings: RedisSettings,
        catalog: FeatureCatalog,
        *,
        timeout_s: float = 2.0,
        tracer: trace.Tracer | None = None,
        cache_rows: int = 0,
        counts: dict[str, int] | None = None,
    ) -> RedisOnlineStore:
        """A store with its own connections; connection failures are not retried here.

        ``cache_rows`` entity rows are kept in memory while Redis says they are unchanged (client
        tracking; 0: every read goes to Redis), counting hits and misses in ``counts``.
        """
        client: redis.asyncio.Redis | redis.asyncio.RedisCluster
        if settings.cluster:
            client = redis.asyncio.RedisCluster(
                startup_nodes=[
                    redis.asyncio.cluster.ClusterNode(host, port)
                    for host, port in settings.startup_nodes
                ],
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                **settings.client_kwargs(),
            )
        else:
            no_retry = Retry(NoBackoff(), 0)
            client = redis.asyncio.Redis(**_client_kwargs(settings, timeout_s), retry=no_retry)
        reads = row_client(settings, timeout_s=timeout_s, tracking=cache_rows > 0, tracer=tracer)
        cache = RowCache(cache_rows) if cache_rows > 0 else None
        rows = RowReader(reads, cache, counts=counts)
        return cls(client, catalog, rows, kept_past_ttl=settings.kept_past_ttl)

    @property
    def catalog(self) -> FeatureCatalog:
        """The catalog this store resolves views with."""
        return self._catalog

    @property
    def rows(self) -> RowReader:
        """The raw read path: HMGET replies of prepared batches, through the row cache."""
        return self._rows

    async def write(self, rows: Iterable[FeatureRow]) -> WriteResult:
        """Write rows in pipelined batches; each is kept only if not older than the stored one."""
        results: list[Any] = []
        for batch in _chunks(rows):
            prepared = [write_args(row, self._catalog, self._kept_past_ttl) for row in batch]
            with _translated("writing"):
                results += await self._evalsha_write(prepared)
        return _counted(results)

    async def _evalsha_write(self, prepared: list[tuple[bytes, list[bytes | str]]]) -> list[Any]:
        """One pipelined EVALSHA per row; a node that answers NOSCRIPT gets the script again.

        Not redis-py's ``Script`` in a pipeline: it asks SCRIPT EXISTS before every batch, a
        round trip more. A restarted Redis or a promoted replica has an empty script cache.
        """
        client = self._client
        if not self._loaded:
            await client.script_load(WRITE_IF_NEWER_LUA)
            self._loaded = True
        batch = _ScriptedBatch(prepared)
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            batch.queue(pipe)
            if batch.answered(await pipe.execute(raise_on_error=False)):
                return batch.results
            if attempt == 0:  # a node without the script: load it again
                await client.script_load(WRITE_IF_NEWER_LUA)
        raise BackendUnavailableError(_LOST_SCRIPT)

    async def read(
        self,
        entities: Sequence[EntityKey],
        refs: Sequence[FeatureRef],
        *,
        now: datetime | None = None,
    ) -> OnlineFeatures:
        """Read ``refs`` of every entity: one HMGET per entity key, one round trip per node."""
        if now is not None and now.utcoffset() is None:
            raise ValidationError("now must be timezone-aware", field="now")
        plan = ReadPlan.build(self._catalog, entities, refs, view_key)
        groups: dict[tuple[bytes, ...], list[int]] = {}
        for c, (_, fields) in enumerate(plan.commands):
            groups.setdefault(tuple(fields), []).append(c)
        batches = [
            (RowBatch.of(fields, [plan.commands[c][0] for c in commands]), commands)
            for fields, commands in groups.items()
        ]
        with _translated("reading"):
            results = await asyncio.gather(*(self._rows.read(batch) for batch, _ in batches))
        replies: list[Any] = [None] * len(plan.commands)
        for (_, commands), (got, _) in zip(batches, results, strict=True):
            for c, reply in zip(commands, got, strict=True):
                replies[c] = reply
        _check(replies)
        features = plan.decode(replies, now or datetime.now(UTC))
        cached = any(hits for _, hits in results)  # none: no row can be a stale cached one
        again = _stale_cached(plan, features, batches, results) if cached else []
        if again:
            # A cached row past its TTL may be of a key that Redis has expired since.
            for (batch, commands), rows in again:
                got = [replies[c] for c in commands]
                with _translated("reading"):
                    await self._rows.reread(batch, got, rows)
                for c, reply in zip(commands, got, strict=True):
                    replies[c] = reply
            _check(replies)
            features = plan.decode(replies, now or datetime.now(UTC))
        return features

    async def close(self) -> None:
        """Close the connections: the reader's too when closing the writer's fails."""
        try:
            await self._client.aclose()
        finally:
            await self._rows.aclose()


def _check(replies: Sequence[Any]) -> None:
    """Raise for the first reply that is not a row: a passing state is UNAVAILABLE."""
    for reply in replies:
        if not isinstance(reply, list):
            raise read_failure(reply)


def _stale_cached(
    plan: ReadPlan,
    features: OnlineFeatures,
    batches: list[tuple[RowBatch, list[int]]],
    results: list[tuple[list[Any], Sequence[int]]],
) -> list[tuple[tuple[RowBatch, list[int]], list[int]]]:
    """Per batch, the rows that came from the cache and hold a value past its TTL."""
    stale_commands: set[int] = set()
    for (v, _), column in zip(plan.view_of_ref, features.columns, strict=True):
        for e, value in enumerate(column):
            if value.status is FeatureStatus.OUTSIDE_MAX_AGE:
                stale_commands.add(plan.slots[v][e].command)
    if not stale_commands:
        return []
    again = []
    for (batch, commands), (_, hits) in zip(batches, results, strict=True):
        cached = set(hits)
        rows = [i for i, c in enumerate(commands) if c in stale_commands and i in cached]
        if rows:
            again.append(((batch, commands), rows))
    return again


class RedisOnlineWriter:
    """A blocking writer for processes without an event loop (Spark's ``foreachBatch``)."""

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        catalog: FeatureCatalog,
        *,
        kept_past_ttl: timedelta,
    ):
        """Write through ``client`` the views of ``catalog`` (kept ``kept_past_ttl`` past TTL)."""
        self._client = client
        self._catalog = catalog
        self._kept_past_ttl = kept_past_ttl
        self._loaded = False
        """Whether the write script was loaded (SCRIPT LOAD; on every master of a cluster)."""

    @classmethod
    def from_settings(
        cls, settings: RedisSettings, catalog: FeatureCatalog, *, timeout_s: float = 5.0
    ) -> RedisOnlineWriter:
        """A writer with its own connection pool (one per master of a cluster)."""
        if settings.cluster:
            client = redis.cluster.RedisCluster(
                startup_nodes=[
                    redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
                    for host, port in settings.startup_nodes
                ],
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                **settings.client_kwargs(),
            )
            return cls(client, catalog, kept_past_ttl=settings.kept_past_ttl)
        single = redis.Redis(**_client_kwargs(settings, timeout_s))
        return cls(single, catalog, kept_past_ttl=settings.kept_past_ttl)

    def write(self, rows: Iterable[FeatureRow]) -> WriteResult:
        """Like :meth:`RedisOnlineStore.write`, blocking."""
        return self._write_prepared(
            [write_args(row, self._catalog, self._kept_past_ttl) for row in batch]
            for batch in _chunks(rows)
        )

    def write_tables(
        self, tables: Sequence[tuple[str, pa.Table, Sequence[str]]], join_key: str
    ) -> WriteResult:
        """Write views' rows given as tables, ``(view, table, features)`` each, like :meth:`write`.

        Built column by column (:func:`table_write_args`); every view's rows go in the same
        pipelined batches.
        """
        prepared = [
            args
            for view, table, features in tables
            for args in table_write_args(
                table, view, features, join_key, self._catalog, self._kept_past_ttl
            )
        ]
        return self._write_prepared(
            prepared[at : at + _BATCH_ROWS] for at in range(0, len(prepared), _BATCH_ROWS)
        )

    def _write_prepared(
        self, batches: Iterable[list[tuple[bytes, list[bytes | str]]]]
    ) -> WriteResult:
        """Send each batch of prepared rows in one pipeline; count what was kept."""
        results: list[Any] = []
        for prepared in batches:
            with _translated("writing"):
                results += self._evalsha_write(prepared)
        return _counted(results)

    def _evalsha_write(self, prepared: list[tuple[bytes, list[bytes | str]]]) -> list[Any]:
        """Like :meth:`RedisOnlineStore._evalsha_write`, blocking."""
        client = self._client
        if not self._loaded:
            client.script_load(WRITE_IF_NEWER_LUA)
            self._loaded = True
        batch = _ScriptedBatch(prepared)
        for attempt in range(2):
            with client.pipeline(transaction=False) as pipe:
                batch.queue(pipe)
                replies = pipe.execute(raise_on_error=False)
            if batch.answered(replies):
                return batch.results
            if attempt == 0:  # a node without the script: load it again
                client.script_load(WRITE_IF_NEWER_LUA)
        raise BackendUnavailableError(_LOST_SCRIPT)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
