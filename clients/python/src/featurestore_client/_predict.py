"""Predict: the request and the typed answer."""

from __future__ import annotations

import numbers
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import SupportsFloat

from featurestore_client._convert import STATUS
from featurestore_client._convert import add_entities
from featurestore_client._convert import listed
from featurestore_client._convert import scalar
from featurestore_client._proto.v1 import prediction_service_pb2
from featurestore_client._proto.v1 import types_pb2
from featurestore_client._types import EntityValue
from featurestore_client._types import FeatureStatus
from featurestore_client._types import FeatureValue

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "IDEMPOTENCY_KEY",
    "Prediction",
    "Predictions",
    "predict_request",
    "predictions",
    "with_idempotency_key",
]

IDEMPOTENCY_KEY = "idempotency-key"
"""The metadata key of a Predict call's idempotency key: the server derives the prediction ids
from it, so a call repeated with the same key logs the same ids again (one row per id)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """The score of one entity row, and the features the model saw."""

    request_id: str
    """Id of the PredictionLog event the server wrote for it."""
    score: float
    features: Mapping[str, FeatureValue]
    """``"view:feature"`` to the value the model saw (None: passed as NaN) and its status."""
    feature_time: datetime | None
    """Event time of the newest feature row used."""


@dataclass(frozen=True)
class Predictions:
    """The answer of ``predict``: one prediction per entity row, in request order."""

    model_name: str
    model_version: str
    """The registry version that scored (the alias's version at the time of the call)."""
    entities: Mapping[str, Sequence[EntityValue]]
    predictions: Sequence[Prediction]

    def __len__(self) -> int:
        return len(self.predictions)

    @property
    def scores(self) -> list[float]:
        """The scores, in row order."""
        return [p.score for p in self.predictions]

    def to_dataframe(self) -> pd.DataFrame:
        """Join keys, ``score``, ``model_version`` and the feature values (needs pandas)."""
        import pandas as pd

        rows: list[dict[str, Any]] = []
        for i, prediction in enumerate(self.predictions):
            row: dict[str, Any] = {k: v[i] for k, v in self.entities.items()}
            row["score"] = prediction.score
            row["model_version"] = self.model_version
            row.update({name: value.value for name, value in prediction.features.items()})
            rows.append(row)
        return pd.DataFrame(rows)


def _number(where: str, value: SupportsFloat | None) -> types_pb2.Value:
    """An inline feature value: a number (NumPy's too), or None for a missing one."""
    if value is None:
        return types_pb2.Value()
    if isinstance(value, bool | str | bytes) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{where}: a {type(value).__name__} is not a number (give a number, or None for a"
            " missing value)"
        )
    return types_pb2.Value(double_value=float(value))


def predict_request(
    model_name: str,
    alias: str | None,
    version: str | int | None,
    entities: Mapping[str, Sequence[EntityValue]],
    inline_features: Mapping[str, Sequence[SupportsFloat | None]] | None,
) -> prediction_service_pb2.PredictRequest:
    """A PredictRequest (the server's default alias is "champion")."""
    request = prediction_service_pb2.PredictRequest(model_name=model_name)
    if alias is not None:
        request.alias = alias
    if version is not None:
        request.version = str(version)
    add_entities(request.entities, entities)
    for name, column in (inline_features or {}).items():
        where = f"inline_features[{name!r}]"
        values = listed(where, column)
        request.inline_features[name].values.extend(
            _number(f"{where}[{row}]", v) for row, v in enumerate(values)
        )
    return request


def with_idempotency_key(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (the Predict stub) sending one new key with every attempt of this one call.

    Made once per ``predict`` call and passed to the retry loop, so that each retry of the call
    carries the key of its first attempt: a call whose answer was lost after the server logged
    its predictions is logged again under the same ids, which the prediction log keeps once.
    """
    key = (IDEMPOTENCY_KEY, uuid.uuid4().hex)

    def attempt(request: Any, *, metadata: Sequence[tuple[str, str]] = (), **call: Any) -> Any:
        return method(request, metadata=(*metadata, key), **call)

    return attempt


def predictions(
    response: prediction_service_pb2.PredictResponse,
    entities: Mapping[str, Sequence[EntityValue]],
) -> Predictions:
    """The response as :class:`Predictions`.

    Raises:
        ValueError: A prediction whose feature names, values and statuses differ in number
            (a server that breaks the API's contract), naming the prediction.
    """
    out = []
    for p in response.predictions:
        counts = (len(p.feature_names), len(p.feature_values), len(p.feature_statuses))
        if len(set(counts)) > 1:
            raise ValueError(
                f"featurestore: prediction {p.request_id} has {counts[0]} feature names,"
                f" {counts[1]} values and {counts[2]} statuses"
            )
        features = {
            name: FeatureValue(scalar(value), STATUS.get(status, FeatureStatus.NOT_FOUND), None)
            for name, value, status in zip(
                p.feature_names, p.feature_values, p.feature_statuses, strict=True
            )
        }
        when = p.feature_time.ToDatetime(tzinfo=UTC) if p.HasField("feature_time") else None
        out.append(Prediction(p.request_id, p.score, features, when))
    return Predictions(
        response.model_name, response.model_version, {k: list(v) for k, v in entities.items()}, out
    )
