"""The zero-decode GetOnlineFeatures path answers exactly what the general path answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.config import Settings
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.service.convert import entities_from_proto
from featurestore.service.convert import features_from_proto
from featurestore.service.convert import online_features_to_proto
from featurestore.service.raw_features import RawFeatureReader

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _request(
    symbols: list[str], features: list[str] | None = None, service: str | None = None
) -> feature_service_pb2.GetOnlineFeaturesRequest:
    request = feature_service_pb2.GetOnlineFeaturesRequest()
    if service:
        request.feature_service = service
    else:
        request.features.features.extend(features or [])
    request.entities["symbol"].values.extend(types_pb2.Value(string_value=s) for s in symbols)
    return request


@pytest.mark.parametrize(
    ("cached", "memo_bytes"),
    [(False, 0), (True, 0), (True, 1 << 20)],
    ids=["uncached", "row-cache", "row-cache-and-memo"],
)
def test_raw_and_general_paths_agree(
    stack: Settings,
    catalog: StaticCatalog,
    write_rows: Callable[[list[FeatureRow]], None],
    cached: bool,
    memo_bytes: int,
) -> None:
    rows = []
    for i in range(30):
        key = EntityKey.of(symbol=f"S{i:02d}")
        if i % 7 == 3:
            continue  # no row at all: NOT_FOUND
        # Some bars are older than the view's TTL; a fresh rolling row keeps their hash alive.
        stale = i % 5 == 1
        age = timedelta(hours=2) if stale else timedelta(seconds=i)
        bars = {"close": 100.0 + i, "trade_count": i, "vwap": None if i % 4 == 2 else i / 3}
        if i % 3 or stale:  # written first: a fresh row, whatever the stale one's expiry
            rows.append(FeatureRow("rolling_1m", key, NOW, {"vwap_5m": float(i)}))
        rows.append(FeatureRow("bars_1m", key, NOW - age, bars))
    write_rows(rows)
    symbols = [f"S{i:02d}" for i in range(31)]
    requests = [
        _request(symbols, ["bars_1m:close", "rolling_1m:vwap_5m", "bars_1m:vwap"]),
        _request(symbols[:1], ["bars_1m:trade_count", "bars_1m:close"]),
        _request(symbols, service="market_features_v1"),
    ]

    async def both() -> list[tuple[bytes | None, feature_service_pb2.GetOnlineFeaturesResponse]]:
        fast_store = RedisOnlineStore.from_settings(
            stack.redis, catalog, cache_rows=1000 if cached else 0
        )
        store = RedisOnlineStore.from_settings(stack.redis, catalog)
        raw = RawFeatureReader(fast_store.rows, catalog, max_entities=1000, memo_bytes=memo_bytes)
        try:
            # A feature named twice is refused on both paths, naming the second (as Feast does).
            twice = _request(symbols[:1], ["bars_1m:close", "bars_1m:trade_count", "bars_1m:close"])
            for refuse in (
                lambda: raw.respond(twice.SerializeToString()),
                lambda: store.read([], features_from_proto(twice, catalog)),
            ):
                with pytest.raises(ValidationError, match=r"^features\.features\[2\]: "):
                    await refuse()
            out = []
            for request in requests * 3:  # later rounds: cached plans, keys, rows, responses
                fast = await raw.respond(request.SerializeToString())
                refs = features_from_proto(request, catalog)
                entities = entities_from_proto(request.entities, max_rows=1000)
                out.append((fast, online_features_to_proto(await store.read(entities, refs))))
            return out
        finally:
            await fast_store.close()
            await store.close()

    seen: set[int] = set()
    for fast, general in asyncio.run(both()):
        assert fast is not None
        parsed = feature_service_pb2.GetOnlineFeaturesResponse.FromString(fast)
        assert parsed == general
        seen.update(s for column in general.columns for s in column.statuses)
    assert seen == {  # the data covers every status
        types_pb2.FEATURE_STATUS_PRESENT,
        types_pb2.FEATURE_STATUS_NULL_VALUE,
        types_pb2.FEATURE_STATUS_NOT_FOUND,
        types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE,
    }
