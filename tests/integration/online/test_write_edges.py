"""Write-if-newer at its edges, against the stack's real Redis (one server or a cluster).

Replays are normal in an event-sourced store: whatever order rows arrive in, the newest row of an
(entity, view) is what is served, whole, and nothing of an older row with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online import FeatureStatus
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.online.testing import BARS_1M

pytestmark = pytest.mark.integration

CLOSE = FeatureRef("bars_1m", "close")
VOLUME = FeatureRef("bars_1m", "volume")


def _bar(symbol: str | int, when: datetime, **values: float | None) -> FeatureRow:
    return FeatureRow("bars_1m", EntityKey.of(symbol=symbol), when, values)


def test_a_newer_row_without_a_feature_leaves_no_older_value(
    with_store: Callable[..., Any],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    async def scenario(store: RedisOnlineStore) -> Any:
        await store.write([_bar("P", now - timedelta(seconds=10), close=1.0, volume=500.0)])
        await store.write([_bar("P", now, close=2.0)])
        return await store.read([EntityKey.of(symbol="P")], [CLOSE, VOLUME])

    close, volume = (column[0] for column in with_store(scenario).columns)
    assert (close.value, close.event_time) == (2.0, now)
    assert (volume.value, volume.status) == (None, FeatureStatus.NULL_VALUE)


@pytest.fixture
def catalog(project: str) -> StaticCatalog:
    """The market catalog with ``bars_1m`` kept forever (rows of 1960 would expire at once)."""
    return StaticCatalog.of(project, [replace(BARS_1M, ttl=None)])


def test_rows_before_1970_are_ordered_like_any_other(with_store: Callable[..., Any]) -> None:
    """Timestamps before the epoch have negative seconds: a later row still wins, an older loses."""
    times = [datetime(1960, 1, 1, tzinfo=UTC), datetime(1965, 6, 1, 0, 0, 0, 5, tzinfo=UTC)]
    times.append(datetime(2020, 1, 1, tzinfo=UTC))

    async def scenario(store: RedisOnlineStore) -> Any:
        kept = [
            (await store.write([_bar("E", t, close=float(i))])).written for i, t in enumerate(times)
        ]
        older = await store.write([_bar("E", datetime(1950, 1, 1, tzinfo=UTC), close=-1.0)])
        replayed = await store.write([_bar("E", times[1], close=-2.0)])
        before = await store.write([_bar("F", times[1], close=1.0)])
        earlier = await store.write([_bar("F", times[0], close=0.0)])
        read = await store.read([EntityKey.of(symbol="E"), EntityKey.of(symbol="F")], [CLOSE])
        return kept, older.stale, replayed.stale, before.written, earlier.stale, read

    kept, older, replayed, before, earlier, read = with_store(scenario)
    assert kept == [1, 1, 1]
    assert (older, replayed, before, earlier) == (1, 1, 1, 1)
    (e, f) = read.columns[0]
    assert (e.value, e.event_time) == (2.0, times[2])
    assert (f.value, f.event_time) == (1.0, times[1])


def test_unusual_entity_keys_round_trip(with_store: Callable[..., Any]) -> None:
    keys: list[str | int] = ["", " ", "1", 1, "é", "e\u0301", "日本語", "a\x00b", "x" * 10_000]
    keys += [0, -1, 2**63 - 1, -(2**63)]
    now = datetime.now(UTC).replace(microsecond=0)

    async def scenario(store: RedisOnlineStore) -> Any:
        await store.write([_bar(k, now, close=float(i)) for i, k in enumerate(keys)])
        return await store.read([EntityKey.of(symbol=k) for k in keys], [CLOSE])

    assert [v.value for v in with_store(scenario).columns[0]] == [
        float(i) for i in range(len(keys))
    ]
