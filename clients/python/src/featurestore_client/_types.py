"""What the SDK returns: plain Python values and NumPy columns, apart from the wire types."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["EntityValue", "FeatureColumn", "FeatureStatus", "FeatureValue", "Scalar"]

Scalar = float | int | str | bool | bytes | None
EntityValue = str | int

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FeatureStatus(enum.Enum):
    """Whether a value was found and is fresh."""

    PRESENT = "present"
    NULL_VALUE = "null_value"
    NOT_FOUND = "not_found"
    OUTSIDE_MAX_AGE = "outside_max_age"

    @property
    def code(self) -> int:
        """Its number on the wire, as in :attr:`FeatureColumn.statuses` (PRESENT is 1)."""
        return _CODES[self]

    @classmethod
    def of_code(cls, code: int) -> FeatureStatus:
        """The status of a wire number (an unknown one reads as NOT_FOUND)."""
        return _BY_CODE[code] if 0 < code < len(_BY_CODE) else cls.NOT_FOUND


# The wire numbers of featurestore.v1.FeatureStatus, in the order of the members above.
_BY_CODE: tuple[FeatureStatus, ...] = (FeatureStatus.NOT_FOUND, *FeatureStatus)
_CODES = {status: code for code, status in enumerate(_BY_CODE) if code}


@dataclass(frozen=True, slots=True)
class FeatureValue:
    """One value, its status and the event time of the row it comes from."""

    value: Scalar
    status: FeatureStatus
    event_time: datetime | None


@dataclass(frozen=True, eq=False)
class FeatureColumn:
    """One feature for every entity row of a response, as NumPy arrays of equal length.

    Decoded straight from the response's bytes (no Python object per value): use the arrays for
    bulk work, :meth:`at` for one entity.
    """

    name: str
    """The feature reference, ``"view:feature"``."""
    values: NDArray[Any]
    """The values: float64 (doubles), float32, int64 (also Unix timestamps, in seconds), int32,
    bool, or object (strings, bytes, or kinds that differ between rows). Where :attr:`is_set` is
    False the entry is NaN, 0, False or None by dtype."""
    is_set: NDArray[np.bool_]
    """Whether each value is set (False where the status is NOT_FOUND or NULL_VALUE)."""
    statuses: NDArray[np.uint8]
    """Each value's status as its wire number (:attr:`FeatureStatus.code`: 1 present, 2 null,
    3 not found, 4 outside max age)."""
    event_times: NDArray[np.datetime64]
    """The event time (UTC, microseconds) of the row each value comes from; NaT where none."""

    def __len__(self) -> int:
        return len(self.values)

    def at(self, row: int) -> FeatureValue:
        """The value of entity row ``row`` as a :class:`FeatureValue`."""
        value: Scalar = None
        if self.is_set[row]:
            item = self.values[row]
            value = item.item() if isinstance(item, np.generic) else item
        stamp = self.event_times[row]
        when = None
        if not np.isnat(stamp):
            when = _EPOCH + timedelta(microseconds=int(stamp.astype(np.int64)))
        return FeatureValue(value, FeatureStatus.of_code(int(self.statuses[row])), when)
