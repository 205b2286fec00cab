"""The functions Spark runs per symbol (on its Python workers), and their schemas.

One output row per symbol and batch carries that symbol's feature rows and dead letters as Arrow
IPC bytes: the rows cross from the Python worker to the driver as a few binary cells instead of
thousands of wide rows converted to the JVM's row format and back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from processors.core import SymbolState
from processors.group import GroupJob, GroupResult
from processors.tables import to_ipc

__all__ = [
    "OUTPUT_DDL",
    "STATE_DDL",
    "batch_function",
    "result_row",
    "stateful_function",
]

OUTPUT_DDL = (
    "symbol string, bars binary, rolling binary, dead binary, records long, bars_rows long, "
    "rolling_rows long, dead_rows long, duplicates long, late long, decode_s double, "
    "machine_s double"
)
"""One row per symbol and batch."""
STATE_DDL = "state binary"
"""The symbol's :class:`SymbolState` in its byte form."""


def result_row(result: GroupResult) -> pd.DataFrame:
    """A :data:`OUTPUT_DDL` row for one symbol."""
    return pd.DataFrame(
        {
            "symbol": [result.symbol],
            "bars": [to_ipc(result.bars)],
            "rolling": [to_ipc(result.rolling)],
            "dead": [to_ipc(result.dead)],
            "records": [result.records],
            "bars_rows": [result.bars.num_rows],
            "rolling_rows": [result.rolling.num_rows],
            "dead_rows": [result.dead.num_rows],
            "duplicates": [result.duplicates],
            "late": [result.late],
            "decode_s": [result.decode_s],
            "machine_s": [result.machine_s],
        }
    )


def stateful_function(
    job: GroupJob,
) -> Callable[[tuple[Any, ...], Iterator[pd.DataFrame], Any], Iterator[pd.DataFrame]]:
    """The ``applyInPandasWithState`` function: state in, state out, one row per symbol."""

    def run(
        key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: Any
    ) -> Iterator[pd.DataFrame]:
        records = pd.concat(list(frames), ignore_index=True)
        current = SymbolState.from_bytes(bytes(state.get[0])) if state.exists else None
        result, updated = job.run(key[0], records, current)
        if updated is not None:
            state.update((updated.to_bytes(),))
        yield result_row(result)

    return run


def batch_function(job: GroupJob) -> Callable[[tuple[Any, ...], pd.DataFrame], pd.DataFrame]:
    """The ``applyInPandas`` function of the backfill: all of a symbol's records, fresh state."""

    def run(key: tuple[Any, ...], records: pd.DataFrame) -> pd.DataFrame:
        result, _ = job.run(key[0], records, None)
        return result_row(result)

    return run
