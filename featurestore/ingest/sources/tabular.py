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
empty is dead-lettered with the reason. A file that names a column it reads twice is refused,
naming the column (which of the two is meant cannot be known). An empty CSV cell counts as
absent. Values are converted as far as possible here; whatever does not convert is passed on as it
is, for validation to reject with a precise reason. Numbers convert exactly: an integer column
takes integral text (``100``, ``100.0``) as the exact integer, and a number too large for a float
(``1e400``) is passed on as an exact ``Decimal`` so that validation says it is out of range as
given; a Parquet ``decimal128`` price is a ``Decimal`` too. A Parquet value that has no Python
form (a timestamp past year 9999, a string that is not UTF-8) dead-letters its own row, naming
the column; the other rows of its batch stand. CSV fields must not span lines (one record per
line, so that the dead-letter value is that line).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from decimal import InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import ValidationError
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.sources.lines import READ_ERRORS
from featurestore.ingest.sources.lines import Line
from featurestore.ingest.sources.lines import read_lines

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


_INFINITIES = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
_INT_DIGITS = 30
"""Integral values with more digits than this stay ``Decimal``: out of any range, never built."""


def _to_float(value: object) -> object:
    """Text to a float; text beyond a float's range (1e400, 1e-400) to the exact ``Decimal``."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if (math.isinf(number) and value.strip().lower() not in _INFINITIES) or number == 0:
            try:
                exact = Decimal(value)  # "1e400" is finite as written, "1e-400" is not zero
            except InvalidOperation:
                return number
            return exact if exact != 0 else number
        return number
    return value


def _to_int(value: object) -> object:
    """Text or a float to the exact integer it holds; anything else as it is."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:  # "100.0", "1e3"; or more digits than int() converts
            try:
                exact = Decimal(value)
            except InvalidOperation:
                return value
            if not exact.is_finite() or exact != exact.to_integral_value():
                return value  # "100.5": not an integer, for validation to say so
            return int(exact) if exact.adjusted() < _INT_DIGITS else exact
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
    if isinstance(value, int | float | bool | Decimal):
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
        """Raise ValidationError naming a column read twice, or a required one missing.

        A column this layout reads that ``present`` names twice is refused: a row would hold
        two values for one field, and which one is meant cannot be known.
        """
        read = set(self.source_columns())
        seen: set[str] = set()
        for column in present:
            if column in seen and column in read:
                raise ValidationError(
                    f"{name}: column {column!r} appears more than once"
                    f" (the file has: {', '.join(present)})",
                    field=column,
                )
            seen.add(column)
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
    name_column: str | None = None,
    tag_columns: Sequence[str] = (),
) -> Layout:
    """Return the layout of a metric table whose columns the user names.

    Every row's metric is called ``name``, or, with ``name_column``, what that column holds (a
    "long" table of several metrics; a row whose name is empty is refused).

    Raises:
        ValidationError: one column is given two of the roles entity, time, value and name.

    """
    roles = {"entity": entity_column, "time": time_column, "value": value_column}
    if name_column is not None:
        roles["name"] = name_column
    if len(set(roles.values())) != len(roles):
        *first, last = roles
        raise ValidationError(
            f"{', '.join(first)} and {last} must be different columns, got "
            + ", ".join(f"{role}={column!r}" for role, column in roles.items()),
            field="columns",
        )
    tags = tuple(dict.fromkeys(tag_columns))
    columns: dict[str, tuple[str, Convert]] = {
        entity_column: ("entity", _keep),
        time_column: ("event_time", _to_time),
        value_column: ("value", _to_float),
    }
    if name_column is not None:
        columns[name_column] = ("name", _keep)
    return Layout(
        kind="metric",
        columns=columns,
        id_field="metric_id",
        defaults={"name": name if name_column is None else ""},
        tag_columns=tags,
        required=(*columns, *tags),
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
                for row, problem in _batch_rows(batch):
                    row_no += 1
                    raw = json.dumps(row, default=str, sort_keys=True).encode()
                    reject = None
                    if problem is not None:  # the cells without a value are left out
                        row = {c: v for c, v in row.items() if c not in problem.columns}
                        reject = problem.reason
                    fields = self.layout.fields(row, f"{self.name}:{row_no}")
                    yield SourceRecord(self.name, row_no, fields, raw, reject, self.kind)
        except (pa.ArrowException, *READ_ERRORS) as exc:
            row_no += 1
            reason = f"unreadable: {self.name} fails after row {row_no - 1}: {exc}"
            fields = {self.layout.id_field: f"{self.name}:{row_no}"}
            yield SourceRecord(self.name, row_no, fields, b"", reason, self.kind)


_CONVERT_ERRORS = (OverflowError, ValueError, pa.ArrowException)
"""What turning an Arrow value into a Python one can raise: a timestamp past year 9999
(``OverflowError``), a string that is not UTF-8 (``UnicodeDecodeError``), ..."""


@dataclass(frozen=True, slots=True)
class _RowProblem:
    """Why a Parquet row is rejected: cells of it that have no Python value."""

    columns: frozenset[str]
    """The columns whose cell in the row did not convert."""
    reason: str
    """The row's rejection (``<code>: <detail>``), for the first of them."""


def _batch_rows(batch: pa.RecordBatch) -> Iterator[tuple[dict[str, object], _RowProblem | None]]:
    """Yield the rows of ``batch`` as dicts, each with what of it did not convert (or ``None``).

    The whole batch converts at once; only when that fails are its columns converted one by one,
    and the cells of a column that fails one by one, so a bad value costs its row alone.
    """
    try:
        rows = batch.to_pylist()
    except _CONVERT_ERRORS:
        pass
    else:
        for row in rows:
            yield row, None
        return
    names = batch.schema.names
    columns: list[list[object]] = []
    bad: list[dict[int, str]] = []  # per column: row -> why its cell has no value
    for name, array in zip(names, batch.columns, strict=True):
        try:
            columns.append(array.to_pylist())
            bad.append({})
        except _CONVERT_ERRORS:
            cells, why = _cells(name, array)
            columns.append(cells)
            bad.append(why)
    for i in range(batch.num_rows):
        row = {name: column[i] for name, column in zip(names, columns, strict=True)}
        failed = [(name, why[i]) for name, why in zip(names, bad, strict=True) if i in why]
        yield row, _RowProblem(frozenset(n for n, _ in failed), failed[0][1]) if failed else None


def _cells(name: str, array: pa.Array) -> tuple[list[object], dict[int, str]]:
    """Convert one column cell by cell: the values (a bad cell as its text), and the reasons."""
    cells: list[object] = []
    why: dict[int, str] = {}
    for i in range(len(array)):
        try:
            cells.append(array[i].as_py())
        except _CONVERT_ERRORS as exc:
            text = _cell_text(array, i)
            cells.append(text)
            why[i] = _cell_reason(name, array.type, text, exc)
    return cells, why


def _cell_text(array: pa.Array, i: int) -> str:
    """A cell without a Python value, as Arrow writes it (bytes escaped where not UTF-8)."""
    cell = array.slice(i, 1)
    try:
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            binary = pa.binary() if pa.types.is_string(array.type) else pa.large_binary()
            data = cell.view(binary)[0].as_py()
            return data.decode("utf-8", "backslashreplace") if data is not None else ""
        return str(cell.cast(pa.string())[0].as_py())
    except _CONVERT_ERRORS:
        return f"<a {array.type} value>"


def _cell_reason(name: str, kind: pa.DataType, text: str, exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"unparsable: column {name!r} is not UTF-8 text"
            f" (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        )
    if pa.types.is_temporal(kind):
        return f"out_of_range: column {name!r} holds {text}, outside years 1-9999"
    return f"unparsable: column {name!r} holds a {kind} value with no Python form: {text}"
