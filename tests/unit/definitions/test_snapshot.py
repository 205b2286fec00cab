"""Definitions kept as JSON (``featurestore/definitions/snapshot.py``) come back equal, and the
catalog built from them is the one Feast's registry gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from featurestore.definitions import Definitions
from featurestore.definitions import load_repo
from featurestore.definitions import market_definitions
from featurestore.definitions.feast_codec import to_feast_objects
from featurestore.definitions.registry import register_objects
from featurestore.definitions.snapshot import decode_definitions
from featurestore.definitions.snapshot import encode_definitions
from featurestore.online.catalog import StaticCatalog
from featurestore.online.catalog import catalog_from_definitions
from featurestore.online.catalog import catalog_from_feast

SAMPLES = {
    "registry": load_repo,
    "market-prefixed": lambda: market_definitions(
        "p1", table_prefix="x_", source_topic="tt", ttl=timedelta(0)
    ),
}


@pytest.mark.parametrize("make", SAMPLES.values(), ids=SAMPLES.keys())
def test_definitions_come_back_equal_from_json(make: Callable[[], Definitions]) -> None:
    definitions = make()
    text = json.dumps(encode_definitions(definitions))
    assert decode_definitions(json.loads(text)) == definitions
    assert any(v.stream is not None for v in definitions.views)  # the nested parts are covered


def test_what_is_not_encoded_definitions_is_refused() -> None:
    good = encode_definitions(market_definitions("p"))
    with pytest.raises(ValueError, match="unknown fields"):
        decode_definitions({**good, "extra": 1})
    with pytest.raises(ValueError, match="expected str"):
        decode_definitions({**good, "project": 3})
    with pytest.raises(KeyError):
        decode_definitions({**good, "views": [{**good["views"][0], "ttl": {}}]})


@pytest.mark.parametrize("make", SAMPLES.values(), ids=SAMPLES.keys())
def test_the_catalog_of_definitions_is_the_registry_s(
    sqlite_store: Callable[[str], Any], make: Callable[[], Definitions]
) -> None:
    """Equal but for the order of a view's features: the declared one here, while Feast lists a
    stream view's in the order of a set (of the process's string hashes)."""
    definitions = make()
    store = sqlite_store(definitions.project)
    register_objects(store, to_feast_objects(definitions, kafka_bootstrap="broker:9092"))
    assert _sorted(catalog_from_definitions(definitions)) == _sorted(catalog_from_feast(store))


def _sorted(catalog: StaticCatalog) -> StaticCatalog:
    views = [
        replace(view, features=tuple(sorted(view.features, key=lambda f: f.name)))
        for view in catalog.views.values()
    ]
    return StaticCatalog.of(catalog.project, views, catalog.services)
