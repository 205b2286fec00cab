"""The Redis online store, in Feast's layout (see :mod:`featurestore.online.layout`).

Writes are write-if-newer per (entity, view), atomically on the server (a Lua script compares the
stored ``_ts:view``), so a late or replayed row never regresses a value; a row with the same event
time replaces the stored one (a recomputed row wins). The key expires at the newest row's event
time + its view's TTL. Reads fetch many entities x features with one pipeline of HMGET, one command
per entity key, in one round trip.

Errors of redis-py are translated at this boundary: connection errors and timeouts become
:class:`BackendUnavailableError`, anything else :class:`FeatureStoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio
from opentelemetry import trace
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from featurestore.config import RedisSettings
from featurestore.errors import BackendUnavailableError, FeatureStoreError, ValidationError
from featurestore.online._lua import WRITE_IF_NEWER_LUA
from featurestore.online.base import (
    EntityKey,
    FeatureCatalog,
    FeatureRef,
    FeatureRow,
    FeatureViewSpec,
    OnlineFeatures,
    WriteResult,
)
from featurestore.online.layout import (
    encode_timestamp,
    encode_value,
    feature_field,
    redis_key,
    timestamp_field,
    timestamp_nanos,
)
from featurestore.online.pipelined import redis_span
from featurestore.online.reading import ReadPlan

__all__ = ["WRITE_IF_NEWER_LUA", "RedisOnlineStore", "RedisOnlineWriter"]

_BATCH_ROWS = 500


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailableError(f"online store (Redis) unavailable while {action}") from exc
    except redis.RedisError as exc:
        raise FeatureStoreError(f"online store (Redis) failed while {action}: {exc}") from exc


def view_key(view: FeatureViewSpec, entity: EntityKey, project: str) -> bytes:
    """The Redis key of ``entity`` for ``view``: only the view's join keys count."""
    return redis_key(view.key_of(entity), project)


def write_args(row: FeatureRow, catalog: FeatureCatalog) -> tuple[bytes, list[bytes | str]]:
    """The key and script arguments that write ``row``."""
    view = catalog.view(row.view)
    seconds, nanos = timestamp_nanos(row.event_time)
    expire_at = ""
    if view.ttl is not None:
        expire_at = str(int((row.event_time + view.ttl).timestamp() * 1000))
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
    return view_key(view, row.entity, catalog.project), args


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
    }


class RedisOnlineStore:
    """The asyncio online store the gRPC service reads (and tests write) through."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        catalog: FeatureCatalog,
        *,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._script = client.register_script(WRITE_IF_NEWER_LUA)
        self._tracer = tracer
        """A client span per read when set (a child of the caller's span)."""

    @classmethod
    def from_settings(
        cls,
        settings: RedisSettings,
        catalog: FeatureCatalog,
        *,
        timeout_s: float = 2.0,
        tracer: trace.Tracer | None = None,
    ) -> RedisOnlineStore:
        """A store with its own connection pool; connection failures are not retried here."""
        no_retry = Retry(NoBackoff(), 0)
        client = redis.asyncio.Redis(**_client_kwargs(settings, timeout_s), retry=no_retry)
        return cls(client, catalog, tracer=tracer)

    @property
    def catalog(self) -> FeatureCatalog:
        """The catalog this store resolves views with."""
        return self._catalog

    async def write(self, rows: Iterable[FeatureRow]) -> WriteResult:
        """Write rows in pipelined batches; each is kept only if not older than the stored one."""
        written = stale = 0
        for batch in _chunks(rows):
            prepared = [write_args(row, self._catalog) for row in batch]
            with _translated("writing"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, args in prepared:
                        await self._script(keys=[key], args=args, client=pipe)
                    results = await pipe.execute()
            accepted = sum(int(r) for r in results)
            written += accepted
            stale += len(results) - accepted
        return WriteResult(written=written, stale=stale)

    async def read(
        self,
        entities: Sequence[EntityKey],
        refs: Sequence[FeatureRef],
        *,
        now: datetime | None = None,
    ) -> OnlineFeatures:
        """Read ``refs`` of every entity with one pipeline of HMGET (one per entity key)."""
        plan = ReadPlan.build(self._catalog, entities, refs, view_key)
        span: AbstractContextManager[object] = nullcontext()
        if self._tracer is not None:
            kwargs = self._client.connection_pool.connection_kwargs
            span = redis_span(
                self._tracer, "HMGET", len(plan.commands),
                str(kwargs.get("host")), int(kwargs.get("port", 0)), int(kwargs.get("db", 0)),
            )  # fmt: skip
        with span, _translated("reading"):
            async with self._client.pipeline(transaction=False) as pipe:
                for key, fields in plan.commands:
                    # redis-py's annotations say str; bytes keys and fields are what it sends.
                    pipe.hmget(key, fields)  # type: ignore[arg-type]
                replies = await pipe.execute()
        return plan.decode(replies, now or datetime.now(UTC))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


class RedisOnlineWriter:
    """A blocking writer for processes without an event loop (Spark's ``foreachBatch``)."""

    def __init__(self, client: redis.Redis, catalog: FeatureCatalog) -> None:
        self._client = client
        self._catalog = catalog
        self._script = client.register_script(WRITE_IF_NEWER_LUA)

    @classmethod
    def from_settings(
        cls, settings: RedisSettings, catalog: FeatureCatalog, *, timeout_s: float = 5.0
    ) -> RedisOnlineWriter:
        """A writer with its own connection pool."""
        return cls(redis.Redis(**_client_kwargs(settings, timeout_s)), catalog)

    def write(self, rows: Iterable[FeatureRow]) -> WriteResult:
        """Like :meth:`RedisOnlineStore.write`, blocking."""
        written = stale = 0
        for batch in _chunks(rows):
            prepared = [write_args(row, self._catalog) for row in batch]
            with _translated("writing"), self._client.pipeline(transaction=False) as pipe:
                for key, args in prepared:
                    self._script(keys=[key], args=args, client=pipe)
                results = pipe.execute()
            accepted = sum(int(r) for r in results)
            written += accepted
            stale += len(results) - accepted
        return WriteResult(written=written, stale=stale)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
