"""What drift reads of a model version: its feature service's features, or its signature's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from featurestore.definitions import Definitions
from featurestore.definitions import stream_definitions
from featurestore.errors import ValidationError
from models.monitoring import drift_inputs
from models.registry import ModelRef


def _definitions() -> Definitions:
    return stream_definitions({"trades": "trades", "metrics": "metrics"}, "p")


def _signature(*columns: str) -> SimpleNamespace:
    """The one call drift_inputs makes of the registry: a version's signature input names."""
    return SimpleNamespace(input_names=lambda ref: columns)


def test_a_trained_model_reads_its_service_and_a_user_s_model_its_signature() -> None:
    defs = _definitions()
    trained = ModelRef("m", "1", "run", {"feature_service": "market_features_v1"})
    inputs = drift_inputs(_signature(), trained, defs)  # type: ignore[arg-type]
    assert inputs.transformed and inputs.request.feature_service == "market_features_v1"
    own = ModelRef("m", "2", "run")
    columns = ("rolling_1m__vwap_5m", "bars_1m__volume")
    inputs = drift_inputs(_signature(*columns), own, defs)  # type: ignore[arg-type]
    assert not inputs.transformed
    assert inputs.columns == columns and inputs.views == ("rolling_1m", "bars_1m")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ((), r"names no inputs: it has no feature_service tag and no signature of features"),
        (("entity", "bars_1m__volume"), r"input 'entity' is not a feature named 'view__feature'"),
        (
            ("bars_1m__volume", "metric_rolling_1m__value_mean_1m"),
            r"reads views of several entities \(join keys entity, symbol\)",
        ),
    ],
    ids=["no-signature", "not-a-feature", "two-entities"],
)
def test_a_model_drift_cannot_be_measured_for_is_refused_naming_why(
    columns: tuple[str, ...], message: str
) -> None:
    ref = ModelRef("m", "3", "run")
    with pytest.raises(ValidationError, match=message) as caught:
        drift_inputs(_signature(*columns), ref, _definitions())  # type: ignore[arg-type]
    assert caught.value.field == "model"  # the monitor passes such a model over, said once
