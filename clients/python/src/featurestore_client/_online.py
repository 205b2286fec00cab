"""The answer of ``get_online_features``: NumPy columns, and rows, dicts and frames on top."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import overload

import numpy as np
from numpy.typing import NDArray

from featurestore_client._types import EntityValue
from featurestore_client._types import FeatureColumn
from featurestore_client._types import FeatureStatus
from featurestore_client._types import FeatureValue

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

__all__ = ["EntityRow", "OnlineFeatures"]

_STATUS_NAMES = [status.value for status in FeatureStatus]  # in wire order, from 1
_SHOWN_ROWS = 5
"""Entity rows a ``repr`` shows."""


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One entity of an answer: its join keys and its features."""

    keys: Mapping[str, EntityValue]
    """Join key to value, for example ``{"symbol": "IBM"}``."""
    features: Mapping[str, FeatureValue]
    """``"view:feature"`` to its value, status and event time."""

    def __getitem__(self, feature: str) -> Any:
        """The value of ``feature`` (None where not set)."""
        return self.features[feature].value


class _Values(Sequence[FeatureValue]):
    """A column seen as :class:`FeatureValue` objects, each made when it is read."""

    __slots__ = ("_column",)

    def __init__(self, column: FeatureColumn) -> None:
        self._column = column

    def __len__(self) -> int:
        return len(self._column)

    @overload
    def __getitem__(self, index: int) -> FeatureValue: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[FeatureValue]: ...

    def __getitem__(self, index: int | slice) -> FeatureValue | Sequence[FeatureValue]:
        if isinstance(index, slice):
            return [self._column.at(i) for i in range(len(self))[index]]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self._column.at(index % len(self))


class OnlineFeatures:
    """The latest features of the requested entities: one row per entity, in request order.

    Each feature is a :class:`FeatureColumn` of NumPy arrays (values, whether each is set,
    statuses, event times) decoded straight from the response, in :attr:`columns`. On top:
    :meth:`to_numpy` (a rows x features matrix), :meth:`to_arrow`, :meth:`to_dataframe`,
    :meth:`to_dicts`, one entity by :meth:`row` or by iterating, and :attr:`features` (a
    :class:`FeatureValue` per entity, made when read).
    """

    __slots__ = ("_columns", "_entities")

    def __init__(
        self, entities: Mapping[str, Sequence[EntityValue]], columns: Sequence[FeatureColumn]
    ) -> None:
        """``entities``: the join key columns as requested; ``columns``: one per feature.

        Raises:
            ValueError: a column's length is not the number of entity rows.
        """
        self._entities = {key: list(values) for key, values in entities.items()}
        self._columns = {column.name: column for column in columns}
        rows = len(self)
        wrong = [c.name for c in columns if len(c) != rows]
        if wrong:
            raise ValueError(f"columns {wrong} do not have {rows} rows, one per entity")

    @property
    def entities(self) -> Mapping[str, Sequence[EntityValue]]:
        """The join key columns as requested."""
        return self._entities

    @property
    def columns(self) -> Mapping[str, FeatureColumn]:
        """``"view:feature"`` to its column, in the order of the response."""
        return self._columns

    @property
    def feature_names(self) -> list[str]:
        """The features, ``"view:feature"``, in the order of the response."""
        return list(self._columns)

    @property
    def features(self) -> Mapping[str, Sequence[FeatureValue]]:
        """``"view:feature"`` to one :class:`FeatureValue` per entity row."""
        return {name: _Values(column) for name, column in self._columns.items()}

    def __len__(self) -> int:
        return len(next(iter(self._entities.values()), ()))

    def __repr__(self) -> str:
        """Its size, then the first entity rows: each value, with its status unless present."""
        lines = [f"OnlineFeatures({len(self)} entities x {len(self._columns)} features)"]
        for i in range(min(len(self), _SHOWN_ROWS)):
            entity = self.row(i)
            keys = ", ".join(f"{key}={value!r}" for key, value in entity.keys.items())
            values = ", ".join(
                f"{name}={_shown(feature)}" for name, feature in entity.features.items()
            )
            lines.append(f"  {keys}: {values}")
        if len(self) > _SHOWN_ROWS:
            lines.append(f"  ... {len(self) - _SHOWN_ROWS} more entities")
        return "\n".join(lines)

    def row(self, index: int) -> EntityRow:
        """Entity row ``index`` (negative counts from the end)."""
        keys = {key: values[index] for key, values in self._entities.items()}
        index = range(len(self))[index]
        return EntityRow(keys, {name: c.at(index) for name, c in self._columns.items()})

    def __iter__(self) -> Iterator[EntityRow]:
        """The entity rows, in request order."""
        return (self.row(i) for i in range(len(self)))

    def to_numpy(self, dtype: Any = np.float64) -> NDArray[Any]:
        """A rows x features matrix in the order of :attr:`feature_names`; NaN where not set.

        Raises:
            ValueError: a feature's values are not numbers (strings, bytes).
        """
        matrix = np.empty((len(self), len(self._columns)), dtype)
        for j, column in enumerate(self._columns.values()):
            if column.values.dtype == object:
                raise ValueError(f"{column.name} holds values that are not numbers")
            matrix[:, j] = column.values
            matrix[~column.is_set, j] = np.nan
        return matrix

    def to_dicts(self, *, with_status: bool = False) -> list[dict[str, Any]]:
        """One dict per entity: join keys and feature values (None where not set).

        With ``with_status`` each feature also gets ``"<name>__status"`` (a
        :class:`FeatureStatus`) and ``"<name>__event_time"`` (a datetime, or None) entries.
        """
        table: dict[str, list[Any]] = dict(self._entities)
        for name, column in self._columns.items():
            values = column.values.tolist()
            if not column.is_set.all():
                values = [v if s else None for v, s in zip(values, column.is_set, strict=True)]
            table[name] = values
            if with_status:
                at = [column.at(i) for i in range(len(column))]
                table[f"{name}__status"] = [v.status for v in at]
                table[f"{name}__event_time"] = [v.event_time for v in at]
        return [dict(zip(table, row, strict=True)) for row in zip(*table.values(), strict=True)]

    def to_dataframe(self, *, with_status: bool = False) -> pd.DataFrame:
        """The rows as a pandas DataFrame (install the ``pandas`` extra).

        Doubles are float64 with NaN where not set; integers and bools that are not set in
        every row are pandas' nullable ``Int64`` / ``boolean``. With ``with_status`` each
        feature also gets ``"<name>__status"`` (categorical, of :class:`FeatureStatus`) and
        ``"<name>__event_time"`` (datetime64, UTC; NaT where none) columns.
        """
        import pandas as pd

        data: dict[str, Any] = dict(self._entities)
        statuses = list(FeatureStatus)
        for name, column in self._columns.items():
            data[name] = _pandas_values(column)
            if with_status:
                codes = column.statuses.astype(np.int8) - 1
                data[f"{name}__status"] = pd.Categorical.from_codes(codes, categories=statuses)
                data[f"{name}__event_time"] = pd.DatetimeIndex(column.event_times).tz_localize(
                    "UTC"
                )
        return pd.DataFrame(data)

    def to_arrow(self, *, with_status: bool = False) -> pa.Table:
        """The rows as an Arrow table (install the ``arrow`` extra); null where not set.

        With ``with_status`` each feature also gets ``"<name>__status"`` (dictionary-encoded
        strings, the :class:`FeatureStatus` values) and ``"<name>__event_time"`` (timestamp,
        microseconds, UTC) columns.
        """
        import pyarrow as pa

        arrays: dict[str, Any] = {key: pa.array(v) for key, v in self._entities.items()}
        names = pa.array(_STATUS_NAMES)
        for name, column in self._columns.items():
            mask = None if column.is_set.all() else ~column.is_set
            arrays[name] = pa.array(column.values, mask=mask)
            if with_status:
                codes = pa.array(column.statuses.astype(np.int8) - 1)
                arrays[f"{name}__status"] = pa.DictionaryArray.from_arrays(codes, names)
                times = column.event_times
                arrays[f"{name}__event_time"] = pa.array(
                    times, pa.timestamp("us", tz="UTC"), mask=np.isnat(times)
                )
        return pa.table(arrays)


def _pandas_values(column: FeatureColumn) -> Any:
    """A column's values for pandas: NaN, or a nullable integer or boolean array, where unset."""
    import pandas as pd

    values, is_set = column.values, column.is_set
    if values.dtype.kind == "f" or values.dtype == object or is_set.all():
        return values
    if values.dtype.kind == "b":
        return pd.arrays.BooleanArray(values, ~is_set)
    return pd.arrays.IntegerArray(values, ~is_set)


def _shown(feature: FeatureValue) -> str:
    if feature.status is FeatureStatus.PRESENT:
        return repr(feature.value)
    if feature.value is None:
        return feature.status.name
    return f"{feature.value!r} ({feature.status.name})"
