"""Test doubles for the online store: never imported by the service itself.

:func:`market_catalog` is a fixed catalog of the market's two first views (``bars_1m``,
``rolling_1m``) and three feature services, so that tests and benchmarks can run without Feast or
a registry. It is not ``registry/``: the views there have more features (``close_1m``,
``notional``) and their feature services other members; code that must agree with the declared
features loads them (:func:`featurestore.definitions.load_definitions`). What these views do
have is the declared views' (names, types, order): ``tests/unit/online/test_testing_catalog.py``
fails when they drift apart.
:class:`InMemoryOnlineStore` implements :class:`~featurestore.online.base.OnlineStore` for unit
tests of code above the store. :func:`delete_project_keys` removes what a test or benchmark
wrote to a Redis server.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import redis
import redis.cluster

from featurestore.config import RedisSettings
from featurestore.online.base import EntityKey
from featurestore.online.base import FeatureRef
from featurestore.online.base import FeatureRow
from featurestore.online.base import FeatureSpec
from featurestore.online.base import FeatureStatus
from featurestore.online.base import FeatureValue
from featurestore.online.base import FeatureViewSpec
from featurestore.online.base import OnlineFeatures
from featurestore.online.base import ValueType
from featurestore.online.base import WriteResult
from featurestore.online.catalog import StaticCatalog

__all__ = ["BARS_1M", "ROLLING_1M", "InMemoryOnlineStore", "delete_project_keys", "market_catalog"]

_F64 = ValueType.FLOAT64
BARS_1M = FeatureViewSpec(
    "bars_1m",
    ("symbol",),
    (
        *(FeatureSpec(n, _F64) for n in ("open", "high", "low", "close", "volume")),
        FeatureSpec("trade_count", ValueType.INT64),
        FeatureSpec("avg_trade_size", _F64),
        FeatureSpec("vwap", _F64),
    ),
    timedelta(hours=1),
    (ValueType.STRING,),
)
ROLLING_1M = FeatureViewSpec(
    "rolling_1m",
    ("symbol",),
    tuple(
        FeatureSpec(n, _F64)
        for n in (
            "vwap_5m",
            "vwap_15m",
            "realized_vol_5m",
            "realized_vol_15m",
            "price_momentum_1m",
            "price_momentum_5m",
            "volume_5m",
            "volume_ratio",
            "sma_5",
            "sma_20",
        )
    ),
    timedelta(hours=1),
    (ValueType.STRING,),
)


def market_catalog(project: str = "featurestore") -> StaticCatalog:
    """``bars_1m`` and ``rolling_1m`` with the feature services tests use (see the module doc)."""
    every = [FeatureRef(v.name, f.name) for v in (BARS_1M, ROLLING_1M) for f in v.features]
    anomaly = [
        FeatureRef("bars_1m", n) for n in ("close", "volume", "trade_count", "avg_trade_size")
    ] + [
        FeatureRef("rolling_1m", n)
        for n in ("realized_vol_5m", "volume_ratio", "price_momentum_1m", "price_momentum_5m")
    ]
    direction = [FeatureRef("bars_1m", "close"), FeatureRef("bars_1m", "vwap")] + [
        FeatureRef("rolling_1m", f.name) for f in ROLLING_1M.features
    ]
    return StaticCatalog.of(
        project,
        [BARS_1M, ROLLING_1M],
        {
            "market_features_v1": every,
            "anomaly_features_v1": anomaly,
            "direction_features_v1": direction,
        },
    )


class InMemoryOnlineStore:
    """The online store's semantics (write-if-newer, TTL statuses) in a dict, for unit tests."""

    def __init__(self, catalog: StaticCatalog) -> None:
        """An empty store of the views ``catalog`` defines."""
        self.catalog = catalog
        self._rows: dict[tuple[str, EntityKey], FeatureRow] = {}

    async def write(self, rows: Iterable[FeatureRow]) -> WriteResult:
        """Keep each row unless the stored one of its entity and view is newer."""
        written = stale = 0
        for row in rows:
            key = (row.view, self.catalog.view(row.view).key_of(row.entity))
            stored = self._rows.get(key)
            if stored is not None and stored.event_time > row.event_time:
                stale += 1
                continue
            self._rows[key] = row
            written += 1
        return WriteResult(written, stale)

    async def read(
        self,
        entities: Sequence[EntityKey],
        refs: Sequence[FeatureRef],
        *,
        now: datetime | None = None,
    ) -> OnlineFeatures:
        """The requested features of each entity, with their statuses as of ``now``."""
        now = now or datetime.now(UTC)
        columns = []
        for ref in refs:
            view = self.catalog.view(ref.view)
            view.feature(ref.feature)
            column = []
            for entity in entities:
                row = self._rows.get((ref.view, view.key_of(entity)))
                if row is None:
                    column.append(FeatureValue(None, FeatureStatus.NOT_FOUND, None))
                    continue
                value = row.values.get(ref.feature)
                if value is None:
                    status = FeatureStatus.NULL_VALUE
                elif view.ttl is not None and now - row.event_time > view.ttl:
                    status = FeatureStatus.OUTSIDE_MAX_AGE
                else:
                    status = FeatureStatus.PRESENT
                column.append(FeatureValue(value, status, row.event_time))
            columns.append(tuple(column))
        return OnlineFeatures(tuple(entities), tuple(refs), tuple(columns))

    async def close(self) -> None:
        """Nothing to release (the rows stay)."""
        return None


def delete_project_keys(settings: RedisSettings, *projects: str) -> None:
    """Delete every key of the Feast ``projects`` (a key ends with its project's name).

    On a Redis Cluster every master is scanned, and each key deleted alone: one DEL of keys in
    several slots is refused (CROSSSLOT).
    """
    client: redis.Redis | redis.cluster.RedisCluster
    if settings.cluster:
        client = redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in settings.startup_nodes
            ],
            **settings.client_kwargs(),
        )
    else:
        client = redis.Redis(
            host=settings.host, port=settings.port, db=settings.db, **settings.client_kwargs()
        )
    suffixes = tuple(project.encode() for project in projects)
    with client:
        keys = [k for k in client.scan_iter(count=1000) if k.endswith(suffixes)]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.delete(key)
            pipe.execute()
