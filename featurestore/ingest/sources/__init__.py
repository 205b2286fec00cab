"""Trade sources: vendor files, the store's CSV/Parquet columns, and a synthetic market."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from featurestore.errors import ValidationError
from featurestore.ingest.sources.base import SourceRecord, TradeSource, merge_by_event_time
from featurestore.ingest.sources.lean import LeanTradeFile, lean_time_to_utc
from featurestore.ingest.sources.synthetic import MarketConfig, SyntheticMarket
from featurestore.ingest.sources.tabular import CsvTradeFile, ParquetTradeFile

__all__ = [
    "CsvTradeFile",
    "FileFormat",
    "LeanTradeFile",
    "MarketConfig",
    "ParquetTradeFile",
    "SourceRecord",
    "SyntheticMarket",
    "TradeSource",
    "lean_time_to_utc",
    "merge_by_event_time",
    "open_trade_file",
]

FileFormat = Literal["auto", "lean", "csv", "parquet"]


def open_trade_file(path: Path, file_format: FileFormat = "auto") -> TradeSource:
    """Open a trade file with the adapter for its format.

    ``auto`` picks LEAN for ``<yyyymmdd>_<symbol>_Trade_Tick.csv[.gz]`` names, Parquet for
    ``.parquet``/``.pq``, and the documented CSV columns otherwise.

    Raises:
        ValidationError: the file does not exist, or its name does not fit the format.
    """
    if not path.is_file():
        raise ValidationError(f"{path}: no such file", field="path")
    if file_format == "auto":
        if LeanTradeFile.matches(path):
            file_format = "lean"
        elif path.suffix in (".parquet", ".pq"):
            file_format = "parquet"
        else:
            file_format = "csv"
    if file_format == "lean":
        return LeanTradeFile(path)
    if file_format == "parquet":
        return ParquetTradeFile(path)
    return CsvTradeFile(path)
