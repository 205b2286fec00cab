"""The fast path's row cache on the stack's Redis: invalidated by writes, deletes, expiry, loss."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import redis

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.config import Settings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.online.catalog import LiveCatalog
from featurestore.online.layout import redis_key
from featurestore.online.pipelined import encode_command
from featurestore.online.rows import SingleRedis
from featurestore.service.convert import entities_from_proto
from featurestore.service.convert import features_from_proto
from featurestore.service.convert import online_features_to_proto
from featurestore.service.raw_features import RawFeatureReader

pytestmark = pytest.mark.integration

Response = feature_service_pb2.GetOnlineFeaturesResponse


def _request(*symbols: str) -> feature_service_pb2.GetOnlineFeaturesRequest:
    request = feature_service_pb2.GetOnlineFeaturesRequest()
    request.features.features.extend(["bars_1m:close", "rolling_1m:sma_5"])
    request.entities["symbol"].values.extend(types_pb2.Value(string_value=s) for s in symbols)
    return request


class Readers:
    """The cached fast path and the general path, side by side."""

    def __init__(self, stack: Settings, catalog: StaticCatalog) -> None:
        self.fast_store = RedisOnlineStore.from_settings(stack.redis, catalog, cache_rows=1000)
        rows = self.fast_store.rows
        assert isinstance(rows.client, SingleRedis) and rows.cache is not None
        self.client = rows.client.connection
        self.cache = rows.cache
        self.raw = RawFeatureReader(rows, catalog, max_entities=100)
        self.store = RedisOnlineStore.from_settings(stack.redis, catalog)
        self.catalog = catalog

    async def fast(self, request: feature_service_pb2.GetOnlineFeaturesRequest) -> bytes:
        """The fast path's response bytes (a fresh bytes object for the request each time)."""
        answer = await self.raw.respond(request.SerializeToString())
        assert answer is not None
        return answer

    async def memoized(self, request: feature_service_pb2.GetOnlineFeaturesRequest) -> bytes:
        """The fast path's response bytes, asserting a second call is served from its memo (the
        very same bytes object)."""
        first = await self.fast(request)
        assert await self.fast(request) is first
        return first

    async def both(
        self, request: feature_service_pb2.GetOnlineFeaturesRequest
    ) -> tuple[Response, Response]:
        fast = await self.fast(request)
        refs = features_from_proto(request, self.catalog)
        entities = entities_from_proto(request.entities, max_rows=100)
        general = online_features_to_proto(await self.store.read(entities, refs))
        return Response.FromString(fast), general

    async def settled(
        self,
        request: feature_service_pb2.GetOnlineFeaturesRequest,
        done: Callable[[Response], bool],
    ) -> tuple[Response, Response]:
        """Both answers once the fast one satisfies ``done`` (invalidations arrive in the loop)."""
        deadline = time.monotonic() + 3
        while True:
            fast, general = await self.both(request)
            if done(fast) or time.monotonic() > deadline:
                return fast, general
            await asyncio.sleep(0.01)

    async def write(self, rows: list[FeatureRow]) -> None:
        await self.store.write(rows)

    async def emptied(self) -> None:
        """Waits up to 3 s for the loop to empty the cache (an invalidation, a lost connection),
        without a read meanwhile; fails if it has not."""
        deadline = time.monotonic() + 3
        while len(self.cache) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(self.cache) == 0


@asynccontextmanager
async def readers(stack: Settings, catalog: StaticCatalog) -> AsyncIterator[Readers]:
    both = Readers(stack, catalog)
    try:
        yield both
    finally:
        await both.fast_store.close()
        await both.store.close()


def _closes(response: Response) -> list[float]:
    return [v.double_value for v in response.columns[0].values]


def _run(
    stack: Settings, catalog: StaticCatalog, test: Callable[[Readers], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with readers(stack, catalog) as both:
            await test(both)

    asyncio.run(main())


def test_a_write_replaces_the_cached_row(stack: Settings, catalog: StaticCatalog) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    async def test(both: Readers) -> None:
        a, b = EntityKey.of(symbol="A"), EntityKey.of(symbol="B")
        await both.write([FeatureRow("bars_1m", a, now, {"close": 1.0})])
        request = _request("A", "B")
        fast, general = await both.both(request)
        assert fast == general and _closes(fast) == [1.0, 0.0]
        assert len(both.cache) == 2  # both rows kept, the missing one too
        await both.write(
            [
                FeatureRow("bars_1m", a, now + timedelta(seconds=1), {"close": 2.0}),
                FeatureRow("bars_1m", b, now, {"close": 3.0}),
                FeatureRow("rolling_1m", b, now, {"sma_5": 4.0}),
            ]
        )
        fast, general = await both.settled(request, lambda r: _closes(r) == [2.0, 3.0])
        assert fast == general
        assert [v.double_value for v in fast.columns[1].values] == [0.0, 4.0]

    _run(stack, catalog, test)


def test_a_deleted_key_is_not_found_again(stack: Settings, catalog: StaticCatalog) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    async def test(both: Readers) -> None:
        key = EntityKey.of(symbol="GONE")
        await both.write([FeatureRow("bars_1m", key, now, {"close": 5.0})])
        request = _request("GONE")
        fast, _ = await both.both(request)
        assert fast.columns[0].statuses == [types_pb2.FEATURE_STATUS_PRESENT]
        admin = redis.Redis(
            host=stack.redis.host,
            port=stack.redis.port,
            db=stack.redis.db,
            **stack.redis.client_kwargs(),
        )
        with admin:
            admin.delete(redis_key(key, catalog.project))
        not_found = [types_pb2.FEATURE_STATUS_NOT_FOUND]
        fast, general = await both.settled(request, lambda r: r.columns[0].statuses == not_found)
        assert fast == general and fast.columns[0].statuses == not_found

    _run(stack, catalog, test)


@pytest.mark.parametrize(
    ("kept_past_ttl_s", "status"),
    [
        (0.0, types_pb2.FEATURE_STATUS_NOT_FOUND),
        (3600.0, types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE),
    ],
)
def test_a_cached_row_past_its_ttl_is_read_again(
    stack: Settings, catalog: StaticCatalog, kept_past_ttl_s: float, status: int
) -> None:
    """A key expires its kept time past its row's TTL (none: with its TTL): the cache must not
    turn NOT_FOUND into OUTSIDE_MAX_AGE, and serves OUTSIDE_MAX_AGE where the key is kept."""
    ttl = catalog.view("bars_1m").ttl
    assert ttl is not None
    margin = 1.5
    event_time = datetime.now(UTC) - ttl + timedelta(seconds=margin)
    kept = stack.redis.model_copy(update={"kept_past_ttl_s": kept_past_ttl_s})

    async def test(both: Readers) -> None:
        # Redis pushes an invalidation once its expiry cycle deletes the key, maybe in time for
        # the second read: ignore invalidations, so that only the TTL rule can notice.
        both.client.on_invalidate(lambda keys: None)
        symbol = f"EXP{kept_past_ttl_s:g}"
        key = EntityKey.of(symbol=symbol)
        await both.write([FeatureRow("bars_1m", key, event_time, {"close": 6.0})])
        request = _request(symbol)
        fast, _ = await both.both(request)
        assert fast.columns[0].statuses == [types_pb2.FEATURE_STATUS_PRESENT]
        await asyncio.sleep(margin + 0.5)
        fast, general = await both.both(request)  # no invalidation needed: Redis may not know yet
        assert fast == general
        assert fast.columns[0].statuses == [status]

    _run(stack.model_copy(update={"redis": kept}), catalog, test)


def test_a_lost_connection_forgets_every_row(stack: Settings, catalog: StaticCatalog) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    async def test(both: Readers) -> None:
        await both.write([FeatureRow("bars_1m", EntityKey.of(symbol="K"), now, {"close": 7.0})])
        request = _request("K")
        await both.both(request)
        assert len(both.cache) == 1
        (connection,) = await both.client.execute(encode_command("CLIENT", "ID"), 1)
        admin = redis.Redis(
            host=stack.redis.host,
            port=stack.redis.port,
            db=stack.redis.db,
            **stack.redis.client_kwargs(),
        )
        with admin:
            admin.client_kill_filter(_id=connection)  # only this connection
        await both.emptied()
        fast, general = await both.both(request)
        assert fast == general and _closes(fast) == [7.0]

    _run(stack, catalog, test)


def test_a_memoized_response_sees_a_rewrite_at_once(
    stack: Settings, catalog: StaticCatalog
) -> None:
    """Once Redis' invalidation is handled, the very next call answers the new row."""
    now = datetime.now(UTC).replace(microsecond=0)

    async def test(both: Readers) -> None:
        key = EntityKey.of(symbol="MEMO")
        await both.write([FeatureRow("bars_1m", key, now, {"close": 1.0})])
        request = _request("MEMO")
        await both.memoized(request)
        await both.write([FeatureRow("bars_1m", key, now + timedelta(seconds=1), {"close": 2.0})])
        await both.emptied()  # until the invalidation has been handled, no read
        fast, general = await both.both(request)
        assert fast == general and _closes(fast) == [2.0]

    _run(stack, catalog, test)


def test_a_memoized_response_sees_a_ttl_crossing_at_once(
    stack: Settings, catalog: StaticCatalog
) -> None:
    """No write, no invalidation: the first call after the crossing says OUTSIDE_MAX_AGE."""
    ttl = catalog.view("bars_1m").ttl
    assert ttl is not None
    margin = 1.0
    crossing = datetime.now(UTC) + timedelta(seconds=margin)

    async def test(both: Readers) -> None:
        key = EntityKey.of(symbol="AGING")
        await both.write(
            [  # the fresh rolling row keeps the hash alive past the bars row's TTL
                FeatureRow("rolling_1m", key, datetime.now(UTC), {"sma_5": 1.0}),
                FeatureRow("bars_1m", key, crossing - ttl, {"close": 3.0}),
            ]
        )
        request = _request("AGING")
        first = await both.memoized(request)
        assert Response.FromString(first).columns[0].statuses == [types_pb2.FEATURE_STATUS_PRESENT]
        await asyncio.sleep(max(0.0, (crossing - datetime.now(UTC)).total_seconds()) + 0.01)
        fast, general = await both.both(request)
        assert fast == general
        assert fast.columns[0].statuses == [types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE]
        assert fast.columns[1].statuses == [types_pb2.FEATURE_STATUS_PRESENT]

    _run(stack, catalog, test)


def test_a_replaced_catalog_is_answered_by_its_new_ttl(
    stack: Settings, catalog: StaticCatalog
) -> None:
    """After an apply shortens a view's TTL, the server's fast path answers by it: its plans and
    memoized responses, made under the old catalog, are dropped when the catalog is replaced."""
    row_time = datetime.now(UTC) - timedelta(minutes=10)

    async def test(both: Readers) -> None:
        live = LiveCatalog(catalog)
        raw = RawFeatureReader(both.fast_store.rows, live, max_entities=100)
        live.on_change(raw.forget_plans)  # as the server wires it
        await both.write(
            [FeatureRow("bars_1m", EntityKey.of(symbol="TTL"), row_time, {"close": 7.0})]
        )
        request = _request("TTL").SerializeToString()
        first = await raw.respond(request)
        assert first is not None and await raw.respond(request) is first  # memoized
        statuses = Response.FromString(first).columns[0].statuses
        assert statuses == [types_pb2.FEATURE_STATUS_PRESENT]  # 10 minutes old, TTL 1 hour
        shorter = replace(catalog.view("bars_1m"), ttl=timedelta(minutes=5))
        live.replace(replace(catalog, views={**catalog.views, "bars_1m": shorter}))
        after = await raw.respond(request)
        assert after is not None
        statuses = Response.FromString(after).columns[0].statuses
        assert statuses == [types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE]

    _run(stack, catalog, test)
