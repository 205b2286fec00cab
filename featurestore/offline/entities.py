"""Entity rows in: reading them in batches from memory or files, and checking their keys.

Entity rows are streamed, never loaded whole: a DataFrame or Arrow table is cut into batches, a
Parquet file is read a row group at a time and a CSV file a block at a time.

Timestamps: timezone-aware values are converted to UTC; naive values (a ``datetime64`` column
without a timezone, or strings without an offset) are taken to be in UTC, with a
:class:`NaiveTimestampWarning`, unless the caller asks for naive timestamps to be rejected. A
column that mixes both (Python datetimes with and without a timezone, or ISO strings with and
without an offset) is refused: which instant a naive value means there cannot be guessed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeAlias
from typing import cast

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from featurestore.errors import ValidationError

__all__ = [
    "EntityKeys",
    "EntitySource",
    "NaiveTimestampWarning",
    "entity_keys",
    "iter_entity_batches",
]

EntitySource: TypeAlias = (
    pd.DataFrame | pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch] | Path | str
)
"""Where entity rows come from: in memory, a stream of Arrow batches, a .parquet/.csv file."""

_TS = pa.timestamp("us", tz="UTC")


class NaiveTimestampWarning(UserWarning):
    """Entity timestamps carry no timezone; they are taken to be UTC."""


@dataclass(frozen=True)
class EntityKeys:
    """The join key and UTC timestamp of each row of one batch, in the batch's order."""

    key: pa.Array
    timestamp: pa.Array
    naive: bool
    """Whether the timestamps were naive and assumed to be UTC."""


def iter_entity_batches(
    source: EntitySource, batch_size: int, timestamp_column: str = "event_timestamp"
) -> Iterator[pa.RecordBatch]:
    """The entity rows of ``source`` as record batches of at most ``batch_size`` rows."""
    if isinstance(source, pd.DataFrame):
        for start in range(0, len(source), batch_size):
            part = source.iloc[start : start + batch_size]
            yield from _frame_to_arrow(part, timestamp_column, start).to_batches()
    elif isinstance(source, pa.Table):
        yield from source.to_batches(max_chunksize=batch_size)
    elif isinstance(source, str | Path):
        yield from _file_batches(Path(source), batch_size, timestamp_column)
    else:
        for batch in cast("Iterable[pa.RecordBatch]", source):
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)


def _frame_to_arrow(part: pd.DataFrame, timestamp_column: str, offset: int) -> pa.Table:
    if timestamp_column in part.columns and part[timestamp_column].dtype == object:
        _refuse_mixed_timezones(part[timestamp_column], timestamp_column, offset)
    try:
        return pa.Table.from_pandas(part, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        for name in part.columns:
            try:
                pa.array(part[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as column_exc:
                raise ValidationError(
                    f"entity column {name!r} mixes types Arrow cannot hold in one column "
                    f"({column_exc})",
                    field=str(name),
                ) from exc
        raise ValidationError(f"entity rows cannot be read: {exc}", field="entities") from exc


def _refuse_mixed_timezones(values: pd.Series, name: str, offset: int) -> None:
    """Python datetimes with and without a timezone in one column: which is meant is unknown."""
    aware = values.map(lambda v: isinstance(v, datetime) and v.tzinfo is not None).to_numpy()
    naive = values.map(lambda v: isinstance(v, datetime) and v.tzinfo is None).to_numpy()
    if aware.any() and naive.any():
        raise ValidationError(
            f"entity column {name!r} mixes timestamps with a timezone (row "
            f"{offset + int(aware.argmax())}) and without one (row {offset + int(naive.argmax())});"
            " give every timestamp a timezone, or none (then they are taken as UTC)",
            field=name,
        )


def _file_batches(path: Path, batch_size: int, timestamp_column: str) -> Iterator[pa.RecordBatch]:
    if not path.is_file():
        raise ValidationError(f"entity file {path} does not exist", field="entities")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size)
    elif suffix == ".csv":
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(column_types={timestamp_column: pa.string()}),
        )
        for batch in reader:
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)
    else:
        raise ValidationError(
            f"entity file {path} must be .parquet or .csv, not {suffix or 'no suffix'}",
            field="entities",
        )


def entity_keys(
    batch: pa.RecordBatch,
    join_key: str,
    timestamp_column: str,
    *,
    allow_naive: bool = True,
    row_offset: int = 0,
) -> EntityKeys:
    """Check one batch's key and timestamp columns and normalize them (string, UTC microseconds).

    Raises:
        ValidationError: a column is missing, of an unusable type, or holds nulls; or the
            timestamps are naive and ``allow_naive`` is false.
    """
    names = batch.schema.names
    for column in (join_key, timestamp_column):
        if column not in names:
            raise ValidationError(
                f"entity rows have no column {column!r} (columns: {', '.join(names)})",
                field=column,
            )
    key = _key_column(batch.column(join_key), join_key)
    timestamp, naive = _timestamp_column(batch.column(timestamp_column), timestamp_column)
    if naive and not allow_naive:
        raise ValidationError(
            f"entity column {timestamp_column!r} has timestamps without a timezone; "
            "give timezone-aware timestamps (they are compared in UTC)",
            field=timestamp_column,
        )
    for column, values in ((join_key, key), (timestamp_column, timestamp)):
        if values.null_count:
            first = pc.index(pc.is_null(values), True).as_py()
            raise ValidationError(
                f"entity column {column!r} is null in row {row_offset + first}",
                field=column,
            )
    return EntityKeys(key, timestamp, naive)


def _key_column(values: pa.Array, name: str) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    raise ValidationError(
        f"entity column {name!r} must hold strings, not {values.type}", field=name
    )


def _timestamp_column(values: pa.Array, name: str) -> tuple[pa.Array, bool]:
    kind = values.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            return values.cast(pa.timestamp("us"), safe=False).cast(pa.int64()).cast(_TS), True
        return values.cast(_TS, safe=False), False
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return values.cast(_TS), False
        except pa.ArrowInvalid:
            pass
        try:
            naive = values.cast(pa.timestamp("us"))
        except pa.ArrowInvalid as exc:
            raise ValidationError(
                f"entity column {name!r} holds strings that are not ISO 8601 timestamps, or mixes "
                f"timestamps with and without a UTC offset: {exc}",
                field=name,
            ) from exc
        return naive.cast(pa.int64()).cast(_TS), True
    raise ValidationError(
        f"entity column {name!r} must hold timestamps (or ISO 8601 strings), not {kind}",
        field=name,
    )


def warn_naive(timestamp_column: str) -> None:
    """Warn once that naive timestamps are taken as UTC."""
    warnings.warn(
        f"entity column {timestamp_column!r} has timestamps without a timezone; "
        "they are taken to be UTC",
        NaiveTimestampWarning,
        stacklevel=3,
    )
