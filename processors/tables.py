"""The engine's rows as Arrow tables in the offline table contract, and back out of IPC.

Column names follow :mod:`featurestore.offline.tables`: the join key, ``event_timestamp``,
``created_timestamp``, the features, and the lineage columns. NaN (the engine's null) becomes
a SQL/Feast null here. Re-emissions of a key within a step are collapsed (the last wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from processors.decode import DeadLetter
from processors.features import ViewPlan

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "dead_letter_table",
    "from_ipc",
    "last_emissions",
    "latest_per_entity",
    "rows_table",
    "to_ipc",
]

_TS = pa.timestamp("us", tz="UTC")

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp_ms", pa.int64()),
        ("reason", pa.string()),
    ]
)


def _last_per_key(
    entity: npt.NDArray[np.generic], times: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """Positions of each (entity, time)'s last emission, ordered by entity then time."""
    n = len(times)
    if n <= 1:
        return np.arange(n)
    codes = pd.factorize(entity)[0]  # (hashing: no sort of the strings)
    order = np.lexsort((np.arange(n), times, codes))
    c, t = codes[order], times[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = (c[1:] != c[:-1]) | (t[1:] != t[:-1])
    return order[last]


def rows_table(
    rows: Mapping[str, npt.NDArray[np.generic]],
    view: ViewPlan,
    *,
    join_key: str,
    topic: str,
    partition: int,
) -> pa.Table:
    """A view's rows (a key's last emission only) as a table of the offline contract."""
    keep = _last_per_key(rows["entity"], rows["event_us"].astype(np.int64))
    n = len(keep)

    def col(name: str) -> npt.NDArray[np.generic]:
        return rows[name][keep]

    arrays = [
        pa.array(col("entity").astype(object), pa.string()),
        pa.array(col("event_us").astype(np.int64), pa.int64()).cast(_TS),
        pa.array(col("created_ms").astype(np.int64) * 1000, pa.int64()).cast(_TS),
    ]
    for name in view.features:
        if name in view.int_features:
            arrays.append(pa.array(col(name).astype(np.int64), pa.int64()))
        else:
            arrays.append(pa.array(col(name).astype(np.float64), pa.float64(), from_pandas=True))
    arrays += [
        pa.array([topic] * n, pa.string()),
        pa.array(np.full(n, partition, np.int32), pa.int32()),
        pa.array(col("first_offset").astype(np.int64), pa.int64()),
        pa.array(col("last_offset").astype(np.int64), pa.int64()),
    ]
    names = [
        join_key, "event_timestamp", "created_timestamp", *view.features,
        "source_topic", "source_partition", "source_offset_start", "source_offset_end",
    ]  # fmt: skip
    return pa.Table.from_arrays(arrays, names=names)


def last_emissions(tables: Sequence[pa.Table], join_key: str) -> pa.Table:
    """One view's rows of several steps, in step order, with each key's last emission only.

    A running row re-emitted by a later step (an event within the lateness landed before it)
    replaces the earlier one, as the stores' upserts would.
    """
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if len(tables) == 1:
        return table
    entity = table.column(join_key).to_numpy(zero_copy_only=False)
    times = pc.cast(table.column("event_timestamp"), pa.int64()).to_numpy()
    return table.take(pa.array(_last_per_key(entity, times)))


def latest_per_entity(table: pa.Table, join_key: str) -> pa.Table:
    """Each entity's row with the latest event time."""
    if table.num_rows <= 1:
        return table
    keys = pd.factorize(table.column(join_key).to_numpy(zero_copy_only=False))[0]
    times = pc.cast(table.column("event_timestamp"), pa.int64()).to_numpy()
    order = np.lexsort((times, keys))
    k = keys[order]
    last = np.ones(len(k), dtype=bool)
    last[:-1] = k[1:] != k[:-1]
    return table.take(pa.array(order[last]))


def dead_letter_table(letters: Iterable[DeadLetter]) -> pa.Table:
    """Dead letters as a table."""
    items = list(letters)
    return pa.Table.from_pydict(
        {
            "key": [d.key for d in items],
            "value": [d.value for d in items],
            "partition": [d.partition for d in items],
            "offset": [d.offset for d in items],
            "timestamp_ms": [d.timestamp_ms for d in items],
            "reason": [d.reason for d in items],
        },
        schema=DEAD_LETTER_SCHEMA,
    )


def to_ipc(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes of a table."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def from_ipc(data: bytes | bytearray | memoryview) -> pa.Table:
    """A table back from :func:`to_ipc` bytes."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
