"""The feature logic of the processors: a pure per-symbol state machine, free of Spark.

Everything here is plain Python and numpy, unit-tested without a SparkSession; the Spark jobs in
:mod:`processors.spark` only feed it each symbol's trades in log order and write what it emits.
"""

from __future__ import annotations

from processors.core.machine import MachineOptions, process_trades
from processors.core.output import BAR_COLUMNS, ROLLING_COLUMNS, Emission, RowBlock
from processors.core.state import ClosedBar, IdChunk, MinuteAgg, SymbolState
from processors.core.trades import TradeBatch

__all__ = [
    "BAR_COLUMNS",
    "ROLLING_COLUMNS",
    "ClosedBar",
    "Emission",
    "IdChunk",
    "MachineOptions",
    "MinuteAgg",
    "RowBlock",
    "SymbolState",
    "TradeBatch",
    "process_trades",
]
