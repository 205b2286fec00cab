"""A view declared ``online=False``: not in the online catalog, refused by name, services kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

from featurestore.definitions import market_definitions
from featurestore.errors import NotFoundError
from featurestore.online.catalog import catalog_from_definitions


def test_an_offline_only_view_is_refused_by_name_and_the_others_served() -> None:
    market = market_definitions()
    views = tuple(replace(v, online=v.name != "bars_1m") for v in market.views)
    catalog = catalog_from_definitions(replace(market, views=views))
    assert catalog.view("rolling_1m").name == "rolling_1m"
    with pytest.raises(
        NotFoundError, match=r"^feature view bars_1m is offline only \(online=False"
    ):
        catalog.view("bars_1m")
    with pytest.raises(NotFoundError, match=r"^feature view nope does not exist$"):
        catalog.view("nope")
    # A service that reads it is kept (a training set's), and its bars_1m features are refused.
    service = catalog.feature_service("market_features_v1")
    assert any(ref.view == "bars_1m" for ref in service)
    assert "bars_1m" not in catalog.views
