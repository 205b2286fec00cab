"""Feast's own SDK reads what our writer stored, and we report statuses Feast 0.67 gets wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestore.config import RedisSettings
from featurestore.config import Settings
from featurestore.definitions.repo_config import online_store_config
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online import FeatureStatus
from featurestore.online import FeatureViewSpec
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.online import catalog_from_feast
from featurestore.online.testing import BARS_1M
from featurestore.online.testing import ROLLING_1M

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def feast_store(tmp_path: Path, project: str, redis: RedisSettings) -> Any:
    """A Feast repo in tmp_path on ``redis`` (a server or a cluster), the canonical views applied.

    The views are those of the catalog our writer writes with (``BARS_1M`` and ``ROLLING_1M`` of
    :func:`~featurestore.online.testing.market_catalog`), declared to Feast. Its ``online_store``
    section is the one the store gives Feast (``online_store_config``).
    """
    from feast import Entity
    from feast import FeatureService
    from feast import FeatureStore
    from feast import FeatureView
    from feast import Field
    from feast import FileSource
    from feast.types import String
    from feast.types import from_value_type
    from feast.value_type import ValueType as FeastValueType

    online = "".join(f"  {k}: {v}\n" for k, v in online_store_config(redis).items())
    (tmp_path / "feature_store.yaml").write_text(
        f"project: {project}\n"
        f"registry: {tmp_path / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n{online}"
        "offline_store:\n"
        "  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp_path))
    symbol = Entity(name="symbol", join_keys=["symbol"], value_type=FeastValueType.STRING)
    source = FileSource(path=str(tmp_path / "unused.parquet"), timestamp_field="event_timestamp")

    def view(spec: FeatureViewSpec) -> Any:
        return FeatureView(
            name=spec.name,
            entities=[symbol],
            ttl=spec.ttl,
            schema=[
                Field(name="symbol", dtype=String),
                *(
                    Field(name=f.name, dtype=from_value_type(FeastValueType(f.dtype.feast_number)))
                    for f in spec.features
                ),
            ],
            source=source,
            online=True,
        )

    bars, rolling = view(BARS_1M), view(ROLLING_1M)
    service = FeatureService(name="market_features_v1", features=[bars, rolling])
    store.apply([symbol, bars, rolling, service])
    return store


@pytest.fixture(name="feast_store")
def feast_store_fixture(tmp_path: Path, project: str, stack: Settings) -> Any:
    return feast_store(tmp_path, project, stack.redis)


def test_feast_get_online_features_reads_our_rows(
    feast_store: Any, catalog: StaticCatalog, with_store: Callable[..., Any]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        FeatureRow(
            "bars_1m",
            EntityKey.of(symbol=s),
            now,
            {"close": 10.0 + i, "trade_count": 100 + i, "vwap": 9.5 + i, "volume": None},
        )
        for i, s in enumerate(["AAPL", "MSFT"])
    ]
    rows.append(FeatureRow("rolling_1m", EntityKey.of(symbol="AAPL"), now, {"sma_5": 11.25}))

    async def write(store: RedisOnlineStore) -> None:
        await store.write(rows)

    with_store(write)
    response = feast_store.get_online_features(
        features=["bars_1m:close", "bars_1m:trade_count", "bars_1m:vwap", "rolling_1m:sma_5"],
        entity_rows=[{"symbol": "AAPL"}, {"symbol": "MSFT"}],
    ).to_dict()
    assert response["symbol"] == ["AAPL", "MSFT"]
    assert response["close"] == [10.0, 11.0]
    assert response["trade_count"] == [100, 101]
    assert response["vwap"] == [9.5, 10.5]
    assert response["sma_5"] == [11.25, None]


def test_statuses_where_feast_says_present(
    feast_store: Any, catalog: StaticCatalog, with_store: Callable[..., Any]
) -> None:
    """Feast 0.67 calls a missing entity and a row past its TTL PRESENT; we do not."""
    now = datetime.now(UTC).replace(microsecond=0)
    old = EntityKey.of(symbol="OLD")
    stale = FeatureRow("bars_1m", old, now - timedelta(hours=3), {"close": 1.0})
    keep_alive = FeatureRow("rolling_1m", EntityKey.of(symbol="OLD"), now, {"sma_5": 2.0})

    async def scenario(store: RedisOnlineStore) -> Any:
        await store.write([keep_alive, stale])
        entities = [EntityKey.of(symbol="OLD"), EntityKey.of(symbol="GHOST")]
        return await store.read(entities, [FeatureRef("bars_1m", "close")])

    (ours,) = with_store(scenario).columns
    assert [v.status for v in ours] == [FeatureStatus.OUTSIDE_MAX_AGE, FeatureStatus.NOT_FOUND]

    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

    proto = feast_store.get_online_features(
        features=["bars_1m:close"], entity_rows=[{"symbol": "OLD"}, {"symbol": "GHOST"}]
    ).proto
    close_index = list(proto.metadata.feature_names.val).index("close")
    feast_statuses = [FieldStatus.Name(s) for s in proto.results[close_index].statuses]
    # Recorded so that a Feast upgrade that fixes this shows up here.
    assert feast_statuses == ["PRESENT", "PRESENT"]


def test_catalog_from_a_feast_registry(feast_store: Any, project: str) -> None:
    catalog = catalog_from_feast(feast_store)
    assert catalog.project == project
    bars = catalog.view("bars_1m")
    assert bars.join_keys == ("symbol",)
    assert bars.ttl == timedelta(hours=1)
    assert [f.name for f in bars.features][:2] == ["open", "high"]
    assert FeatureRef("rolling_1m", "sma_20") in catalog.feature_service("market_features_v1")
