"""The test double's catalog (``featurestore/online/testing.py``) against ``registry/``.

:func:`~featurestore.online.testing.market_catalog` repeats part of the declared ``bars_1m`` and
``rolling_1m`` so that tests and benchmarks run without importing Feast. ``registry/`` stays the
one definition: this test fails when the copy stops being a part of it.
"""

from __future__ import annotations

import pytest

from featurestore.definitions import market_definitions
from featurestore.online import FeatureViewSpec
from featurestore.online.catalog import catalog_from_definitions
from featurestore.online.testing import BARS_1M
from featurestore.online.testing import ROLLING_1M
from featurestore.online.testing import market_catalog


@pytest.mark.parametrize("fake", [BARS_1M, ROLLING_1M], ids=lambda v: v.name)
def test_a_fake_view_is_the_declared_view_cut_down(fake: FeatureViewSpec) -> None:
    declared = catalog_from_definitions(market_definitions()).view(fake.name)
    assert (fake.join_keys, fake.join_key_types, fake.ttl) == (
        declared.join_keys,
        declared.join_key_types,
        declared.ttl,
    )
    kept = set(fake.features)  # same names and types, in the declared order
    assert [f for f in declared.features if f in kept] == list(fake.features)


def test_the_fake_market_service_reads_only_what_the_declared_one_reads() -> None:
    declared = catalog_from_definitions(market_definitions()).feature_service("market_features_v1")
    fake = market_catalog().feature_service("market_features_v1")
    assert set(fake) <= set(declared)
