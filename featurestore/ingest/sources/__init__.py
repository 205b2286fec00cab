"""Event sources: vendor trade and quote files, CSV/Parquet tables, and synthetic generators."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from featurestore.errors import ValidationError
from featurestore.ingest.sources.base import EventSource
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.sources.base import merge_by_event_time
from featurestore.ingest.sources.lean import LeanQuoteFile
from featurestore.ingest.sources.lean import LeanTradeFile
from featurestore.ingest.sources.lean import lean_time_to_utc
from featurestore.ingest.sources.metrics import MetricStream
from featurestore.ingest.sources.metrics import MetricStreamConfig
from featurestore.ingest.sources.synthetic import MarketConfig
from featurestore.ingest.sources.synthetic import SyntheticMarket
from featurestore.ingest.sources.tabular import QUOTE_LAYOUT
from featurestore.ingest.sources.tabular import TRADE_LAYOUT
from featurestore.ingest.sources.tabular import CsvFile
from featurestore.ingest.sources.tabular import Layout
from featurestore.ingest.sources.tabular import ParquetFile
from featurestore.ingest.sources.tabular import detect_layout
from featurestore.ingest.sources.tabular import metric_layout

__all__ = [
    "QUOTE_LAYOUT",
    "TRADE_LAYOUT",
    "CsvFile",
    "EventSource",
    "FileFormat",
    "Layout",
    "LeanQuoteFile",
    "LeanTradeFile",
    "MarketConfig",
    "MetricStream",
    "MetricStreamConfig",
    "ParquetFile",
    "RecordKind",
    "SourceRecord",
    "SyntheticMarket",
    "detect_layout",
    "lean_time_to_utc",
    "merge_by_event_time",
    "metric_layout",
    "open_event_file",
]

FileFormat = Literal["auto", "lean", "csv", "parquet"]
_PARQUET_SUFFIXES = (".parquet", ".pq")


def open_event_file(
    path: Path, file_format: FileFormat = "auto", *, layout: Layout | None = None
) -> EventSource:
    """Open a trade, quote or metric file with the adapter for its format.

    ``auto`` picks LEAN for ``<yyyymmdd>_<symbol>_Trade_Tick.csv[.gz]`` and
    ``<yyyymmdd>_<symbol>_Quote_Tick.csv[.gz]`` names, Parquet for ``.parquet``/``.pq``, and CSV
    otherwise; suffixes match in any case, and ``.gz`` (any case) is read through gzip. A CSV or
    Parquet file is read with ``layout``, by default the trade or quote layout its columns imply
    (:func:`detect_layout`).

    Raises:
        ValidationError: the file does not exist, its name does not fit the format, or it lacks
            a column the layout requires.
    """
    if not path.is_file():
        raise ValidationError(f"{path}: no such file", field="path")
    if file_format == "auto":
        if layout is None and (LeanTradeFile.matches(path) or LeanQuoteFile.matches(path)):
            file_format = "lean"
        elif path.suffix.lower() in _PARQUET_SUFFIXES:
            file_format = "parquet"
        else:
            file_format = "csv"
    if file_format == "lean":
        return LeanQuoteFile(path) if LeanQuoteFile.matches(path) else LeanTradeFile(path)
    if file_format == "parquet":
        return ParquetFile(path, layout)
    return CsvFile(path, layout)
