r"""Event files in tabular form: CSV (with a header, optionally gzipped) and Parquet.

Which column fills which event field is a :class:`Layout`. Two are fixed, documented layouts
(names as written, any order; extra columns are ignored):

Trades (:data:`TRADE_LAYOUT`):

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

Quotes (:data:`QUOTE_LAYOUT`): ``symbol``, ``event_time`` as for trades; ``bid_price``,
``ask_price`` (finite, > 0, bid <= ask) and ``bid_size``, ``ask_size`` (integers >= 0), all
required; optional ``exchange`` (default none), ``conditions``, ``quote_id`` (default
``<file name>:<line>``) and ``currency``. Each row is a whole book: both sides.

Metrics (:func:`metric_layout`): the columns are the user's, named when the file is opened:
an entity column, a time column (as ``event_time`` above) and a value column (a finite
number), and optionally tag columns whose values become the metric's tags. The metric's name is
given for the whole file; the id is ``<file name>:<line>``. These columns must all exist in
the file, or opening it fails naming the missing one.

A file is a trade or a quote file by its columns (:func:`detect_layout`): ``bid_price`` and
``ask_price`` make a quote file. A file without a required column is refused when it is opened,
naming the column (every row would be dead-lettered otherwise); a row whose required cell is
empty is dead-lettered with the reason. An empty CSV cell counts as absent. Values are converted as
far as possible here; whatever does not convert is passed on as it is, for validation to reject
with a precise reason. CSV fields must not span lines (one record per line, so that the
dead-letter value is that line).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import ValidationError
from featurestore.ingest.sources.base import RecordKind, SourceRecord
from featurestore.ingest.sources.lines import READ_ERRORS, Line, read_lines

__all__ = [
    "QUOTE_LAYOUT",
    "TRADE_LAYOUT",
    "CsvFile",
    "Layout",
    "ParquetFile",
    "detect_layout",
    "metric_layout",
]

Convert = Callable[[object], object]


def _keep(value: object) -> object:
    return value


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
            value = _to_float(value)  # "100.0" is an int; "100.5" stays a float for the check
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


def _to_tag(value: object) -> object:
    """Tags are text: numbers and flags of a Parquet column are written out, others kept."""
    if isinstance(value, int | float | bool):
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class Layout:
    """Which column of a table fills which field of an event."""

    kind: RecordKind
    columns: Mapping[str, tuple[str, Convert]]
    """Per source column: the event field it fills and how its value is converted."""
    id_field: str
    """The field of the event's id; ``<file name>:<line>`` when the row gives none."""
    defaults: Mapping[str, object] = field(default_factory=dict)
    """Field values of rows that leave them out."""
    tag_columns: tuple[str, ...] = ()
    """Columns gathered into a ``tags`` mapping (column name -> value)."""
    required: tuple[str, ...] = ()
    """Columns a file must have: opening one without them fails, naming the column."""

    def fields(self, row: Mapping[str, object], default_id: str) -> dict[str, object]:
        """Return the candidate event fields of one row."""
        fields = {
            name: convert(row[column])
            for column, (name, convert) in self.columns.items()
            if row.get(column) not in (None, "")
        }
        if self.tag_columns:
            fields["tags"] = {
                c: _to_tag(row[c]) for c in self.tag_columns if row.get(c) not in (None, "")
            }
        for name, value in self.defaults.items():
            fields.setdefault(name, value)
        fields.setdefault(self.id_field, default_id)
        return fields

    def source_columns(self) -> list[str]:
        """The columns this layout reads, in a stable order."""
        return list(dict.fromkeys([*self.columns, *self.tag_columns]))

    def check_columns(self, name: str, present: Sequence[str]) -> None:
        """Raise ValidationError naming the first required column ``present`` lacks."""
        for column in self.required:
            if column not in present:
                raise ValidationError(
                    f"{name}: no column {column!r} (the file has: {', '.join(present) or 'none'})",
                    field=column,
                )


_STOCK = {
    "symbol": ("symbol", _keep),
    "event_time": ("event_time", _to_time),
    "exchange": ("exchange", _keep),
    "conditions": ("conditions", _to_conditions),
    "currency": ("currency", _keep),
}
TRADE_LAYOUT = Layout(
    kind="trade",
    columns={
        **_STOCK,
        "price": ("price", _to_float),
        "size": ("size", _to_int),
        "trade_id": ("trade_id", _keep),
    },
    id_field="trade_id",
    defaults={"conditions": (), "exchange": "", "currency": "USD"},
    required=("symbol", "event_time", "price", "size"),
)
QUOTE_LAYOUT = Layout(
    kind="quote",
    columns={
        **_STOCK,
        "bid_price": ("bid_price", _to_float),
        "bid_size": ("bid_size", _to_int),
        "ask_price": ("ask_price", _to_float),
        "ask_size": ("ask_size", _to_int),
        "quote_id": ("quote_id", _keep),
    },
    id_field="quote_id",
    defaults={"conditions": (), "currency": "USD"},
    required=("symbol", "event_time", "bid_price", "bid_size", "ask_price", "ask_size"),
)


def metric_layout(
    *,
    entity_column: str,
    time_column: str,
    value_column: str,
    name: str = "value",
    tag_columns: Sequence[str] = (),
) -> Layout:
    """Return the layout of a metric table whose columns the user names.

    Raises:
        ValidationError: one column is given two of the roles entity, time and value.

    """
    roles = {"entity": entity_column, "time": time_column, "value": value_column}
    if len(set(roles.values())) != len(roles):
        raise ValidationError(
            "entity, time and value must be three different columns, got "
            + ", ".join(f"{role}={column!r}" for role, column in roles.items()),
            field="columns",
        )
    tags = tuple(dict.fromkeys(tag_columns))
    return Layout(
        kind="metric",
        columns={
            entity_column: ("entity", _keep),
            time_column: ("event_time", _to_time),
            value_column: ("value", _to_float),
        },
        id_field="metric_id",
        defaults={"name": name},
        tag_columns=tags,
        required=(entity_column, time_column, value_column, *tags),
    )


def detect_layout(columns: Sequence[str]) -> Layout:
    """Return the quote layout for columns with ``bid_price`` and ``ask_price``, else trades."""
    return QUOTE_LAYOUT if {"bid_price", "ask_price"} <= set(columns) else TRADE_LAYOUT


_ENCODING = "utf-8-sig"
"""CSV files are UTF-8 text; a byte order mark at the start is allowed."""


def _csv_cells(line: Line) -> list[str]:
    """The cells of one line; ValueError with the reason when it is not one CSV record."""
    if line.text is None:
        raise ValueError(line.problem)
    try:
        return next(csv.reader([line.text]), [])
    except csv.Error as exc:
        raise ValueError(f"unparsable: not one CSV record ({exc})") from exc


class CsvFile:
    """A CSV event file (optionally gzipped) with a header row."""

    def __init__(self, path: Path, layout: Layout | None = None) -> None:
        """Read ``path`` (``.gz``: gzip) with ``layout``, by default the one its header implies.

        Raises:
            ValidationError: the file cannot be read, its header line is not a row of UTF-8 CSV
                text (a binary file, another encoding), or it lacks a column the layout requires.

        """
        self.path = path
        self.name = path.name
        try:
            first = next(read_lines(path, _ENCODING), None)
        except OSError as exc:
            raise ValidationError(f"{self.name}: cannot read: {exc}", field="path") from exc
        try:
            header = _csv_cells(first) if first is not None else []
        except ValueError as exc:
            raise ValidationError(
                f"{self.name}: not a CSV file of UTF-8 text (header line: {exc})",
                field="path",
            ) from exc
        self.header = [h.strip() for h in header]
        self.layout = layout or detect_layout(self.header)
        self.layout.check_columns(self.name, self.header)
        self.kind: RecordKind = self.layout.kind

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield one record per data line (line numbers count the header as line 1).

        A line that is not UTF-8 CSV text, and the rest of a file that fails part way, are
        yielded as rejected records (:mod:`featurestore.ingest.sources.lines`).
        """
        header, layout, kind = self.header, self.layout, self.kind
        for line in read_lines(self.path, _ENCODING):
            line_no, raw = line.number, line.raw
            if line_no == 1 or (line.text is not None and not line.text.strip()):
                continue
            default_id = f"{self.name}:{line_no}"
            try:
                cells = _csv_cells(line)
            except ValueError as exc:
                reason = str(exc)
            else:
                if len(cells) == len(header):
                    row = {h: c.strip() for h, c in zip(header, cells, strict=True)}
                    fields = layout.fields(row, default_id)
                    yield SourceRecord(self.name, line_no, fields, raw, kind=kind)
                    continue
                reason = f"unparsable: {len(cells)} cells for {len(header)} columns"
            fields = {layout.id_field: default_id}
            yield SourceRecord(self.name, line_no, fields, raw, reason, kind)


class ParquetFile:
    """A Parquet event file, read in record batches."""

    def __init__(
        self, path: Path, layout: Layout | None = None, *, batch_size: int = 65_536
    ) -> None:
        """Read ``path`` with ``layout`` (by default the one its columns imply), in batches.

        Raises:
            ValidationError: the file lacks a column the layout requires.

        """
        self.path = path
        self.name = path.name
        self.batch_size = batch_size
        try:
            names = list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"{self.name}: not a Parquet file: {exc}", field="path") from exc
        self.layout = layout or detect_layout(names)
        self.layout.check_columns(self.name, names)
        self.kind: RecordKind = self.layout.kind
        self._columns = [c for c in self.layout.source_columns() if c in names]

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield one record per row (rows are numbered from 1).

        A file that fails part way (a corrupt page) ends with one rejected record, ``unreadable``
        with what failed; the rows before it stand.
        """
        row_no = 0
        try:
            parquet = pq.ParquetFile(self.path)
            for batch in parquet.iter_batches(batch_size=self.batch_size, columns=self._columns):
                for row in batch.to_pylist():
                    row_no += 1
                    raw = json.dumps(row, default=str, sort_keys=True).encode()
                    fields = self.layout.fields(row, f"{self.name}:{row_no}")
                    yield SourceRecord(self.name, row_no, fields, raw, kind=self.kind)
        except (pa.ArrowException, *READ_ERRORS) as exc:
            row_no += 1
            reason = f"unreadable: {self.name} fails after row {row_no - 1}: {exc}"
            fields = {self.layout.id_field: f"{self.name}:{row_no}"}
            yield SourceRecord(self.name, row_no, fields, b"", reason, self.kind)
