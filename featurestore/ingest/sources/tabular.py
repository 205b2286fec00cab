r"""Trade files in the store's own documented columns: CSV (with a header) and Parquet.

Columns (names as written, any order; extra columns are ignored):

==============  ========  ===============================================================
column          required  value
==============  ========  ===============================================================
``symbol``      yes       ticker; upper-cased, must match ``^[A-Z][A-Z0-9.\\-]{0,15}$``
``price``       yes       price per unit, finite and > 0
``size``        yes       quantity, integer >= 0
``event_time``  yes       CSV: ISO 8601 *with* a UTC offset (``2013-10-07T13:30:00.5Z``);
                          Parquet: a timestamp column (a naive one is read as UTC)
``exchange``    no        venue code (default empty)
``conditions``  no        CSV: codes separated by ``|``; Parquet: list of strings or ``|``
``trade_id``    no        unique id; default ``<file name>:<line>`` (deterministic)
``currency``    no        ISO 4217 code (default ``USD``)
==============  ========  ===============================================================

An empty CSV cell counts as absent. Values are converted as far as possible here; whatever does
not convert is passed on as it is, for validation to reject with a precise reason. CSV fields
must not span lines (one record per line, so that the dead-letter value is that line).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from io import BufferedIOBase
from pathlib import Path

import pyarrow.parquet as pq

from featurestore.ingest.sources.base import SourceRecord

__all__ = ["CsvTradeFile", "ParquetTradeFile"]

_KNOWN = ("symbol", "price", "size", "event_time", "exchange", "conditions", "trade_id", "currency")


def _to_float(value: object) -> object:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _to_int(value: object) -> object:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return value
            return int(number) if number.is_integer() else number
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _to_time(value: object) -> object:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _to_conditions(value: object) -> object:
    if isinstance(value, str):
        return tuple(c for c in value.split("|") if c)
    if isinstance(value, list):
        return tuple(value)
    return value


def _fields(row: Mapping[str, object], default_id: str) -> dict[str, object]:
    fields = {k: row[k] for k in _KNOWN if row.get(k) not in (None, "")}
    if "price" in fields:
        fields["price"] = _to_float(fields["price"])
    if "size" in fields:
        fields["size"] = _to_int(fields["size"])
    if "event_time" in fields:
        fields["event_time"] = _to_time(fields["event_time"])
    fields["conditions"] = _to_conditions(fields.get("conditions", ()))
    fields.setdefault("exchange", "")
    fields.setdefault("currency", "USD")
    fields.setdefault("trade_id", default_id)
    return fields


class CsvTradeFile:
    """A CSV trade file (optionally gzipped) with a header row of the documented columns."""

    def __init__(self, path: Path) -> None:
        """Read from ``path``; a ``.gz`` suffix means gzip."""
        self.path = path
        self.name = path.name

    def _open(self) -> BufferedIOBase:
        return gzip.open(self.path, "rb") if self.path.suffix == ".gz" else self.path.open("rb")

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield one record per data line (line numbers count the header as line 1)."""
        with self._open() as handle:
            header_line = handle.readline().decode("utf-8-sig")
            header = [h.strip() for h in next(csv.reader([header_line]), [])]
            for line_no, line in enumerate(handle, start=2):
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                cells = next(csv.reader([raw.decode("utf-8", errors="replace")]))
                default_id = f"{self.name}:{line_no}"
                if len(cells) != len(header):
                    reason = f"unparsable: {len(cells)} cells for {len(header)} columns"
                    fields = {"trade_id": default_id}
                    yield SourceRecord(self.name, line_no, fields, raw, reason)
                    continue
                row = {h: c.strip() for h, c in zip(header, cells, strict=True)}
                yield SourceRecord(self.name, line_no, _fields(row, default_id), raw)


class ParquetTradeFile:
    """A Parquet trade file with the documented columns, read in record batches."""

    def __init__(self, path: Path, *, batch_size: int = 65_536) -> None:
        """Read from ``path``, ``batch_size`` rows at a time."""
        self.path = path
        self.name = path.name
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield one record per row (rows are numbered from 1)."""
        parquet = pq.ParquetFile(self.path)
        columns = [c for c in _KNOWN if c in parquet.schema_arrow.names]
        row_no = 0
        for batch in parquet.iter_batches(batch_size=self.batch_size, columns=columns):
            for row in batch.to_pylist():
                row_no += 1
                raw = json.dumps(row, default=str, sort_keys=True).encode()
                fields = _fields(row, f"{self.name}:{row_no}")
                yield SourceRecord(self.name, row_no, fields, raw)
