"""GetOnlineFeatures end to end through the SDK, over the in-memory store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClient
from featurestore_client import InvalidArgumentError
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy

from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service.testing import ServerThread

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(start_server: Callable[..., ServerThread]) -> FeatureStoreClient:
    store = InMemoryOnlineStore(market_catalog())
    server = start_server(store=store)
    rows = [
        FeatureRow("bars_1m", EntityKey.of(symbol="AAPL"), NOW, {"close": 190.5, "trade_count": 7}),
        FeatureRow("rolling_1m", EntityKey.of(symbol="AAPL"), NOW, {"sma_5": 190.0}),
        FeatureRow("bars_1m", EntityKey.of(symbol="OLD"), NOW - timedelta(hours=2), {"close": 1.0}),
    ]
    server.run(store.write(rows))
    return FeatureStoreClient(server.target, timeout_s=5, retry=RetryPolicy(max_attempts=1))


def test_features_by_reference(client: FeatureStoreClient) -> None:
    result = client.get_online_features(
        ["bars_1m:close", "bars_1m:trade_count", "rolling_1m:sma_5"],
        entities={"symbol": ["AAPL", "OLD", "NONE"]},
    )
    rows = [
        (r["symbol"], r["bars_1m:close"], r["bars_1m:trade_count"], r["rolling_1m:sma_5"])
        for r in result.to_dicts()
    ]
    assert rows == [("AAPL", 190.5, 7, 190.0), ("OLD", 1.0, None, None), ("NONE", None, None, None)]
    close = result.features["bars_1m:close"]
    assert [v.status for v in close] == [
        FeatureStatus.PRESENT,
        FeatureStatus.OUTSIDE_MAX_AGE,
        FeatureStatus.NOT_FOUND,
    ]
    assert close[0].event_time == NOW
    assert close[2].event_time is None
    assert result.features["bars_1m:trade_count"][1].status is FeatureStatus.NULL_VALUE


def test_features_by_feature_service_as_a_dataframe(client: FeatureStoreClient) -> None:
    result = client.get_online_features(
        feature_service="market_features_v1", entities={"symbol": ["AAPL"]}
    )
    assert len(result.features) == 18
    frame = result.to_dataframe(with_status=True)
    assert frame.loc[0, "bars_1m:close"] == 190.5
    assert frame.loc[0, "bars_1m:close__status"] is FeatureStatus.PRESENT
    assert frame.loc[0, "bars_1m:vwap__status"] is FeatureStatus.NULL_VALUE


@pytest.mark.parametrize(
    ("features", "entities", "field"),
    [
        (["close"], {"symbol": ["AAPL"]}, "features.features[0]"),
        (["bars_1m:close", "bad::ref"], {"symbol": ["AAPL"]}, "features.features[1]"),
        (["bars_1m:close", "bars_1m:close"], {"symbol": ["AAPL"]}, "features.features[1]"),
        ([], {"symbol": ["AAPL"]}, "features"),
        (["bars_1m:close"], {}, "entities"),
        (["bars_1m:close"], {"symbol": []}, "entities"),
        (["bars_1m:close"], {"symbol": ["A"], "venue": ["X", "Y"]}, "entities"),
        (["bars_1m:close"], {"symbol": [1.5]}, "entities[symbol].values[0]"),
        (["bars_1m:close"], {"account": ["A"]}, "entities"),
    ],
)
def test_invalid_argument_names_the_field(
    client: FeatureStoreClient, features: list[str], entities: dict[str, list[object]], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.get_online_features(features, entities=entities)  # type: ignore[arg-type]
    assert info.value.details.startswith(f"{field}:")
    assert "Traceback" not in info.value.details


@pytest.mark.parametrize(
    ("features", "service", "named"),
    [
        (["bars_1m:nope"], None, "bars_1m:nope"),
        (["nope_view:close"], None, "nope_view"),
        (None, "no_such_service", "no_such_service"),
        (["v" * 20_000 + ":close"], None, "v" * 400),
        (["bars_1m:" + "f" * 20_000], None, "f" * 400),
        (None, "s" * 20_000, "s" * 400),
    ],
)
def test_not_found_names_the_thing(
    client: FeatureStoreClient, features: list[str] | None, service: str | None, named: str
) -> None:
    # A name too long for a status trailer is cut: the status still arrives, not a client error.
    with pytest.raises(NotFoundError, match=named) as info:
        client.get_online_features(features, feature_service=service, entities={"symbol": ["A"]})
    assert len(info.value.details) < 600


def test_too_many_entities(start_server: Callable[..., ServerThread]) -> None:
    server = start_server(max_entities=3)
    with FeatureStoreClient(server.target) as client, pytest.raises(InvalidArgumentError):
        client.get_online_features(["bars_1m:close"], entities={"symbol": list("ABCD")})
