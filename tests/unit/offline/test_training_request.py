"""A training request refuses a malformed selection when it is made, before anything connects."""

from __future__ import annotations

import pytest

from featurestore.definitions import FeatureRef
from featurestore.definitions import market_definitions
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.offline import TrainingRequest


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give either feature references or a feature service, not both or neither"),
        (
            {"features": ["bars_1m:close"], "feature_service": "market_features_v1"},
            "not both or neither",
        ),
        ({"features": []}, "no features requested"),
        ({"features": ["bars_1m:close", "close"]}, "'close' is not a feature reference"),
        ({"features": ["bars_1m:"]}, "'bars_1m:' is not a feature reference"),
    ],
)
def test_a_malformed_selection_is_refused_naming_the_field(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        TrainingRequest(**kwargs)  # type: ignore[arg-type]
    assert raised.value.field == "features"


def test_a_well_formed_selection_is_resolved_against_the_definitions() -> None:
    defs = market_definitions("p")
    by_refs = TrainingRequest(features=[" bars_1m:close", FeatureRef("bars_1m", "vwap")])
    assert defs.resolve(by_refs.features, by_refs.feature_service) == (
        FeatureRef("bars_1m", "close"),
        FeatureRef("bars_1m", "vwap"),
    )
    by_service = TrainingRequest(feature_service="market_features_v1")
    assert defs.resolve(by_service.features, by_service.feature_service)
    unknown = TrainingRequest(features=["bars_1m:nope"])  # well formed: existence is checked later
    with pytest.raises(NotFoundError, match="no feature 'nope'"):
        defs.resolve(unknown.features, unknown.feature_service)
