"""The state machine's rows as Arrow tables in the offline table contract, and back out of IPC.

Column names follow :mod:`featurestore.offline.tables`: the join key, ``event_timestamp``,
``created_timestamp``, the features, and the lineage columns. NaN (the state machine's null)
becomes a SQL/Feast null here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from processors.core import RowBlock
from processors.core.output import BAR_FEATURES
from processors.core.rolling import ROLLING_FEATURES
from processors.decode import DeadLetter

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "bars_table",
    "dead_letter_table",
    "from_ipc",
    "rolling_table",
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


def _column(name: str, values: np.ndarray) -> pa.Array:
    if name == "trade_count":
        return pa.array(values, pa.int64())
    return pa.array(values, pa.float64(), from_pandas=True)  # NaN -> null


def rows_table(
    block: RowBlock, features: Sequence[str], *, symbol: str, join_key: str, topic: str
) -> pa.Table:
    """Rows of one symbol as a table of the offline contract."""
    cols = block.columns
    n = len(block)
    arrays = [
        pa.array([symbol] * n, pa.string()),
        pa.array(cols["event_us"], pa.int64()).cast(_TS),
        pa.array(cols["created_ms"] * 1000, pa.int64()).cast(_TS),
        *(_column(name, cols[name]) for name in features),
        pa.array([topic] * n, pa.string()),
        pa.array(cols["partition"], pa.int64()).cast(pa.int32()),
        pa.array(cols["first_offset"], pa.int64()),
        pa.array(cols["last_offset"], pa.int64()),
    ]
    names = [
        join_key, "event_timestamp", "created_timestamp", *features,
        "source_topic", "source_partition", "source_offset_start", "source_offset_end",
    ]  # fmt: skip
    return pa.Table.from_arrays(arrays, names=names)


def bars_table(block: RowBlock, *, symbol: str, join_key: str, topic: str) -> pa.Table:
    """bars_1m rows."""
    return rows_table(block, BAR_FEATURES, symbol=symbol, join_key=join_key, topic=topic)


def rolling_table(block: RowBlock, *, symbol: str, join_key: str, topic: str) -> pa.Table:
    """rolling_1m rows."""
    return rows_table(block, ROLLING_FEATURES, symbol=symbol, join_key=join_key, topic=topic)


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
