"""The Redis online store against the stack's real Redis: write-if-newer, TTL, statuses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
import redis
import redis.cluster

from featurestore.config import RedisSettings
from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online import FeatureStatus
from featurestore.online import RedisOnlineStore
from featurestore.online import RedisOnlineWriter
from featurestore.online import StaticCatalog
from featurestore.online.layout import redis_key
from tests.ports import free_port

pytestmark = pytest.mark.integration

CLOSE = FeatureRef("bars_1m", "close")
COUNT = FeatureRef("bars_1m", "trade_count")
SMA5 = FeatureRef("rolling_1m", "sma_5")


def _bar(symbol: str, when: datetime, close: float, count: int | None = 10) -> FeatureRow:
    return FeatureRow(
        "bars_1m", EntityKey.of(symbol=symbol), when, {"close": close, "trade_count": count}
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_write_then_read_many_entities_in_one_call(with_store: Callable[..., Any]) -> None:
    now = _now()
    rows = [_bar(f"S{i}", now - timedelta(seconds=i), 100.0 + i) for i in range(50)]
    rows += [FeatureRow("rolling_1m", EntityKey.of(symbol="S0"), now, {"sma_5": 99.5})]

    async def scenario(store: RedisOnlineStore) -> Any:
        result = await store.write(rows)
        assert (result.written, result.stale) == (51, 0)
        entities = [EntityKey.of(symbol=f"S{i}") for i in range(50)]
        return await store.read(entities, [CLOSE, SMA5, COUNT])

    features = with_store(scenario)
    close, sma, count = features.columns
    assert [v.value for v in close] == [100.0 + i for i in range(50)]
    assert all(v.status is FeatureStatus.PRESENT for v in close)
    assert close[3].event_time == now - timedelta(seconds=3)
    assert sma[0].value == 99.5
    assert sma[1].status is FeatureStatus.NOT_FOUND
    assert count[7].value == 10


def test_an_older_row_never_overwrites_a_newer_one(with_store: Callable[..., Any]) -> None:
    now = _now()

    async def scenario(store: RedisOnlineStore) -> Any:
        first = await store.write([_bar("X", now, 2.0)])
        late = await store.write([_bar("X", now - timedelta(seconds=30), 1.0)])
        # Several rows of one entity in one batch: the newest wins whatever the order.
        batch = await store.write(
            [
                _bar("Y", now, 5.0),
                _bar("Y", now + timedelta(seconds=1), 6.0),
                _bar("Y", now - timedelta(seconds=1), 4.0),
            ]
        )
        same_time = await store.write([_bar("X", now, 2.5)])
        read = await store.read([EntityKey.of(symbol="X"), EntityKey.of(symbol="Y")], [CLOSE])
        return first, late, batch, same_time, read

    first, late, batch, same_time, read = with_store(scenario)
    assert (first.written, late.written, late.stale) == (1, 0, 1)
    assert (batch.written, batch.stale) == (2, 1)
    assert same_time.written == 1  # a recomputed row of the same event time replaces it
    assert [v.value for v in read.columns[0]] == [2.5, 6.0]


def test_key_expires_at_event_time_plus_ttl_plus_the_time_kept_past_it(
    with_store: Callable[..., Any], stack: Settings, project: str
) -> None:
    event_time = _now() - timedelta(minutes=10)

    async def scenario(store: RedisOnlineStore) -> None:
        await store.write([_bar("E", event_time, 1.0)])

    with_store(scenario)
    client: redis.Redis | redis.cluster.RedisCluster
    if stack.redis.cluster:  # the key's master answers, whichever it is
        host, port = stack.redis.startup_nodes[0]
        client = redis.cluster.RedisCluster(host, port, **stack.redis.client_kwargs())
    else:
        client = redis.Redis(
            host=stack.redis.host,
            port=stack.redis.port,
            db=stack.redis.db,
            **stack.redis.client_kwargs(),
        )
    with client:
        key = redis_key(EntityKey.of(symbol="E"), project)
        expire_ms = client.pexpiretime(key)  # type: ignore[arg-type]
    assert stack.redis.kept_past_ttl == timedelta(days=1)  # the default
    expected = (event_time + timedelta(hours=1) + timedelta(days=1)).timestamp() * 1000
    assert expire_ms == pytest.approx(expected, abs=1)


def _write_with(
    writer: str, settings: RedisSettings, catalog: StaticCatalog, rows: list[FeatureRow]
) -> int:
    """Write ``rows`` of bars_1m's close with one of the store's writers; how many were kept."""
    if writer == "store":

        async def main() -> int:
            store = RedisOnlineStore.from_settings(settings, catalog)
            try:
                return (await store.write(rows)).written
            finally:
                await store.close()

        return asyncio.run(main())
    blocking = RedisOnlineWriter.from_settings(settings, catalog)
    try:
        if writer == "blocking":
            return blocking.write(rows).written
        table = pa.table(
            {
                "symbol": [r.entity.values[0] for r in rows],
                "event_timestamp": pa.array(
                    [r.event_time for r in rows], pa.timestamp("us", tz="UTC")
                ),
                "close": [r.values["close"] for r in rows],
            }
        )
        return blocking.write_tables([("bars_1m", table, ["close"])], "symbol").written
    finally:
        blocking.close()


@pytest.mark.parametrize("writer", ["store", "blocking", "tables"])
def test_a_row_past_its_ttl_is_read_outside_max_age_until_kept_past_it(
    with_store: Callable[..., Any], stack: Settings, catalog: StaticCatalog, writer: str
) -> None:
    """A symbol gone quiet reads OUTSIDE_MAX_AGE with its last value and event time for as long
    as rows are kept past their TTL, then NOT_FOUND like a symbol never written; each writer
    sets the same expiry (``bars_1m``'s TTL is an hour)."""
    now = _now()
    two_hours = stack.redis.model_copy(update={"kept_past_ttl_s": 7200.0})
    no_time = stack.redis.model_copy(update={"kept_past_ttl_s": 0.0})
    quiet = now - timedelta(hours=2)  # kept until an hour from now
    stale = now - timedelta(minutes=61)  # kept a day (the stack's default)
    older = now - timedelta(hours=3, minutes=1)  # kept until a minute ago
    assert _write_with(writer, two_hours, catalog, [_bar(f"Q{writer}", quiet, 42.0)]) == 1
    assert _write_with(writer, stack.redis, catalog, [_bar(f"S{writer}", stale, 7.0)]) == 1
    assert _write_with(writer, two_hours, catalog, [_bar(f"O{writer}", older, 3.0)]) == 1
    assert _write_with(writer, no_time, catalog, [_bar(f"Z{writer}", stale, 1.0)]) == 1

    async def scenario(store: RedisOnlineStore) -> Any:
        keys = [EntityKey.of(symbol=f"{k}{writer}") for k in ("Q", "S", "O", "Z", "never")]
        return await store.read(keys, [CLOSE])

    close = with_store(scenario).columns[0]
    past, gone = FeatureStatus.OUTSIDE_MAX_AGE, FeatureStatus.NOT_FOUND
    assert [v.status for v in close] == [past, past, gone, gone, gone]
    assert [(v.value, v.event_time) for v in close[:2]] == [(42.0, quiet), (7.0, stale)]


def test_missing_entity_and_null_value(with_store: Callable[..., Any]) -> None:
    async def scenario(store: RedisOnlineStore) -> Any:
        await store.write([_bar("N", _now(), 3.0, count=None)])
        return await store.read([EntityKey.of(symbol="N"), EntityKey.of(symbol="nobody")], [COUNT])

    (count,) = with_store(scenario).columns
    assert count[0].status is FeatureStatus.NULL_VALUE
    assert count[1].status is FeatureStatus.NOT_FOUND
    assert count[1].event_time is None


def test_blocking_writer_shares_the_layout(
    with_store: Callable[..., Any], stack: Settings, catalog: StaticCatalog
) -> None:
    writer = RedisOnlineWriter.from_settings(stack.redis, catalog)
    now = _now()
    try:
        assert writer.write([_bar("W", now, 7.0)]).written == 1
        assert writer.write([_bar("W", now - timedelta(seconds=1), 6.0)]).stale == 1
    finally:
        writer.close()

    async def scenario(store: RedisOnlineStore) -> Any:
        return await store.read([EntityKey.of(symbol="W")], [CLOSE])

    assert with_store(scenario).columns[0][0].value == 7.0


def test_writers_load_the_script_again_after_redis_forgot_it(
    with_store: Callable[..., Any], stack: Settings, catalog: StaticCatalog
) -> None:
    """A restarted Redis has an empty script cache: the next write answers NOSCRIPT once."""
    admin = redis.Redis(
        host=stack.redis.host,
        port=stack.redis.port,
        db=stack.redis.db,
        **stack.redis.client_kwargs(),
    )
    writer = RedisOnlineWriter.from_settings(stack.redis, catalog)
    now = _now()
    try:
        assert writer.write([_bar("F", now - timedelta(seconds=2), 1.0)]).written == 1
        admin.script_flush()
        assert writer.write([_bar("F", now - timedelta(seconds=1), 2.0)]).written == 1

        async def scenario(store: RedisOnlineStore) -> Any:
            await store.write([_bar("G", now, 3.0)])
            admin.script_flush()
            written = await store.write([_bar("G", now + timedelta(seconds=1), 4.0)])
            return written, await store.read(
                [EntityKey.of(symbol="F"), EntityKey.of(symbol="G")], [CLOSE]
            )

        written, read = with_store(scenario)
    finally:
        writer.close()
        admin.close()
    assert written.written == 1
    assert [v.value for v in read.columns[0]] == [2.0, 4.0]


def test_redis_down_is_backend_unavailable(catalog: StaticCatalog) -> None:
    closed_port = free_port()

    async def scenario() -> None:
        store = RedisOnlineStore.from_settings(
            RedisSettings(port=closed_port), catalog, timeout_s=0.5
        )
        try:
            await store.read([EntityKey.of(symbol="A")], [CLOSE])
        finally:
            await store.close()

    with pytest.raises(BackendUnavailableError):
        asyncio.run(scenario())
