"""What the SDK returns: plain Python values, apart from the wire types."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = ["EntityValue", "FeatureStatus", "FeatureValue", "OnlineFeatures", "Scalar"]

Scalar = float | int | str | bool | bytes | None
EntityValue = str | int


class FeatureStatus(enum.Enum):
    """Whether a value was found and is fresh."""

    PRESENT = "present"
    NULL_VALUE = "null_value"
    NOT_FOUND = "not_found"
    OUTSIDE_MAX_AGE = "outside_max_age"


@dataclass(frozen=True, slots=True)
class FeatureValue:
    """One value, its status and the event time of the row it comes from."""

    value: Scalar
    status: FeatureStatus
    event_time: datetime | None


@dataclass(frozen=True)
class OnlineFeatures:
    """The answer of ``get_online_features``, one row per entity, in request order."""

    entities: Mapping[str, Sequence[EntityValue]]
    """The join key columns as requested."""
    features: Mapping[str, Sequence[FeatureValue]]
    """``"view:feature"`` to one value per entity row."""

    def __len__(self) -> int:
        return len(next(iter(self.entities.values()), ()))

    def to_dicts(self, *, with_status: bool = False) -> list[dict[str, Any]]:
        """One dict per entity: join keys and feature values.

        With ``with_status`` each feature also gets ``"<name>__status"`` and
        ``"<name>__event_time"`` entries.
        """
        rows: list[dict[str, Any]] = []
        for i in range(len(self)):
            row: dict[str, Any] = {key: column[i] for key, column in self.entities.items()}
            for name, values in self.features.items():
                row[name] = values[i].value
                if with_status:
                    row[f"{name}__status"] = values[i].status
                    row[f"{name}__event_time"] = values[i].event_time
            rows.append(row)
        return rows

    def to_dataframe(self, *, with_status: bool = False) -> pd.DataFrame:
        """The same rows as a pandas DataFrame (install the ``pandas`` extra)."""
        import pandas as pd

        return pd.DataFrame(self.to_dicts(with_status=with_status))
