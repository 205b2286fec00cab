"""Adapters for the LEAN / AlgoSeek equity tick files: trades and quotes.

One file per symbol, day and kind, no header, sorted by time, named
``<yyyymmdd>_<symbol>_Trade_Tick.csv[.gz]`` or ``<yyyymmdd>_<symbol>_Quote_Tick.csv[.gz]``.

Trade files:

=======  =====================================================================
column   meaning
=======  =====================================================================
1        milliseconds since midnight, America/New_York, on the file's date
2        price in 1/10,000 USD
3        size (shares)
4        exchange code (a letter)
5        sale condition flags (hex, kept as given, e.g. ``20000020``)
6        suspicious flag (``1`` = flagged by the vendor)
=======  =====================================================================

Quote files:

=======  =====================================================================
column   meaning
=======  =====================================================================
1        milliseconds since midnight, America/New_York, on the file's date
2        bid price in 1/10,000 USD (``0`` = no bid in this row)
3        bid size (shares)
4        ask price in 1/10,000 USD (``0`` = no ask in this row)
5        ask size (shares)
6        exchange code (a letter)
7        quote condition flags (kept as given)
8        suspicious flag (``1`` = flagged by the vendor)
=======  =====================================================================

The symbol and the date come from the file name (``20131007_aig_Trade_Tick.csv.gz``). The
time is a wall-clock time of day in New York, as LEAN reads it (the date plus the elapsed
milliseconds, localised), converted to UTC with the offset in force at that moment: EDT
(UTC-4) in summer, EST (UTC-5) in winter, and per row on the days the clocks change.

Stated rule for the vendor's flag: a row with the suspicious flag set is a real record that is
not trusted; it is rejected with reason ``suspicious: flagged by the vendor`` and goes to the
dead-letter topic. Rows that cannot be parsed are rejected with ``unparsable: ...`` naming the
column and the form it must have (an integer of ASCII digits, optionally signed); a number too
large to hold (a price beyond a float's range) with ``out_of_range: ...`` naming the column.

Quotes, stated rule: a row updates one side of the top of the book (in the shared files every
row quotes exactly one side), so each row yields the *book after the update*: the side(s) the
row quotes, and the other side as the file last quoted it. This is how LEAN's own quote bars
read these files; carried per symbol (not per venue) the books of the shared files are crossed
on fewer than 0.1 % of rows, where per venue they would be on 3-7 %. The exchange is the venue
of the row. A side is quoted when its price or size is not 0; a row that quotes neither is
rejected with ``empty_quote: ...``. Until both sides have been quoted the book is one-sided
and the row is rejected with ``one_sided: ...`` (its side still enters the book). A row that
is flagged, unparsable, or quotes a side with a price <= 0 or a negative size is rejected (by
the source or by validation) and leaves the book as it was. A crossed book (bid > ask) is
rejected by validation, but its row still updates the book: each side is a valid quote, and
the next row usually uncrosses it.

The event id is ``<file name>:<line>``, so replaying the same file twice produces the same ids.
"""

from __future__ import annotations

import re
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from featurestore.errors import ValidationError
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.sources.lines import read_lines

__all__ = ["LEAN_FILE_PATTERN", "LeanQuoteFile", "LeanTradeFile", "lean_time_to_utc"]

NEW_YORK = ZoneInfo("America/New_York")
LEAN_FILE_PATTERN = re.compile(
    r"^(?P<date>[0-9]{8})_(?P<symbol>[A-Za-z0-9.\-]+)_(?P<kind>trade|quote)_tick\.csv(?:\.gz)?$",
    re.IGNORECASE,
)
PRICE_SCALE = 10_000
_DAY = timedelta(days=1)
_DAY_MS = 86_400_000
_INTEGER = re.compile(r"[+-]?[0-9]+")
_SHOWN = 20


class _BadCellError(Exception):
    """A cell of a row that does not convert; :attr:`reason` is its ``<code>: <detail>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN else f"{text[:_SHOWN]!r}... ({len(text)} characters)"


def _integer(cols: list[str], column: int, name: str, form: str) -> int:
    """The integer of a column (1-based); :class:`_BadCellError` naming the column and form."""
    text = cols[column - 1]
    if not _INTEGER.fullmatch(text):
        raise _BadCellError(f"unparsable: column {column} ({name}) is {_shown(text)}, not {form}")
    try:
        return int(text)
    except ValueError as exc:  # more digits than the interpreter converts
        raise _BadCellError(
            f"out_of_range: column {column} ({name}) has {len(text)} characters, too many digits"
        ) from exc


def _price(cols: list[str], column: int, name: str) -> float:
    """A price column (1/10,000 USD) in USD."""
    ticks = _integer(cols, column, name, "an integer number of 1/10,000 USD")
    try:
        return ticks / PRICE_SCALE
    except OverflowError as exc:
        raise _BadCellError(
            f"out_of_range: column {column} ({name}) {_shown(cols[column - 1])} is beyond the"
            " range of a price (a float, about 1.8e308)"
        ) from exc


def _size(cols: list[str], column: int, name: str) -> int:
    return _integer(cols, column, name, "a whole number of shares")


def _time_of_day(cols: list[str]) -> int:
    ms = _integer(cols, 1, "time", "whole milliseconds since midnight")
    if not 0 <= ms < _DAY_MS:
        raise _BadCellError(
            f"unparsable: column 1 (time) {_shown(cols[0])} ms is not within a day"
            f" (0 to {_DAY_MS - 1})"
        )
    return ms


def lean_time_to_utc(day: date, ms_since_midnight: int) -> datetime:
    """Convert a LEAN time of day (wall clock, New York) on ``day`` to an aware UTC datetime."""
    local = datetime.combine(day, time()) + timedelta(milliseconds=ms_since_midnight)
    return local.replace(tzinfo=NEW_YORK).astimezone(UTC)


def _suspicious(flag: str, column: int) -> str | None:
    """Return the rejection of a vendor flag column, or ``None`` when the row is trusted."""
    if flag in ("0", ""):
        return None
    if flag == "1":
        return f"suspicious: flagged by the vendor (column {column} = 1)"
    return f"unparsable: flag {flag!r}"


_RowReader = Callable[[int, bytes, list[str], dict[str, object]], SourceRecord]
"""Makes one row's record from its line number, bytes, cells and fields so far."""


class _LeanFile(ABC):
    """What trade and quote files share: the name, the day's clock and reading lines."""

    kind: RecordKind
    columns: ClassVar[int]
    """Columns of a row."""
    id_field: ClassVar[str]

    def __init__(self, path: Path) -> None:
        """Open a LEAN file by path; the name must follow ``<yyyymmdd>_<symbol>_<Kind>_Tick``.

        Raises:
            ValidationError: the file name does not follow the LEAN pattern of this kind, or its
                date is not a calendar date, or is so late that its times fall past year 9999
                in UTC.

        """
        match = LEAN_FILE_PATTERN.match(path.name)
        if match is None or match["kind"].lower() != self.kind:
            raise ValidationError(
                f"{path.name}: not a LEAN tick {self.kind} file name"
                f" (<yyyymmdd>_<symbol>_{self.kind.title()}_Tick.csv)",
                field="path",
            )
        self.path = path
        self.name = path.name
        self.symbol = match["symbol"].upper()
        try:
            self.day = datetime.strptime(match["date"], "%Y%m%d").date()
        except ValueError as exc:
            raise ValidationError(
                f"{path.name}: {match['date']} is not a date (yyyymmdd)", field="path"
            ) from exc
        try:
            self._base = self._fixed_offset_base()
        except OverflowError as exc:  # 9999-12-31: the day ends past year 9999 in UTC
            raise ValidationError(
                f"{path.name}: date {match['date']} is out of range: its times fall past year"
                " 9999 in UTC",
                field="path",
            ) from exc

    @classmethod
    def matches(cls, path: Path) -> bool:
        """Tell whether a file name follows the LEAN tick pattern of this kind."""
        match = LEAN_FILE_PATTERN.match(path.name)
        return match is not None and match["kind"].lower() == cls.kind

    def _fixed_offset_base(self) -> datetime | None:
        """Return UTC midnight-of-day when one UTC offset holds all day, else ``None`` (DST day)."""
        start = datetime.combine(self.day, time()).replace(tzinfo=NEW_YORK)
        end = (datetime.combine(self.day, time()) + _DAY - timedelta(milliseconds=1)).replace(
            tzinfo=NEW_YORK
        )
        if start.utcoffset() != end.utcoffset():
            return None
        return start.astimezone(UTC)

    def _lines(self) -> Iterator[tuple[int, bytes, list[str] | str]]:
        """Yield (line number, raw bytes, stripped cells or why the line has none).

        A line that is not ASCII text or has the wrong number of columns is ``unparsable``; a
        file that fails part way ends with an ``unreadable`` line
        (:func:`~featurestore.ingest.sources.lines.read_lines`).
        """
        for line in read_lines(self.path, "ascii"):
            raw = line.raw
            if line.text is None:
                yield line.number, raw, line.problem or "unparsable"
            elif raw:
                cols = line.text.split(",")
                if len(cols) == self.columns:
                    yield line.number, raw, [c.strip() for c in cols]
                else:
                    yield (
                        line.number,
                        raw,
                        (f"unparsable: expected {self.columns} columns, got {len(cols)}"),
                    )

    def _event_time(self, ms: int) -> datetime:
        if self._base is not None:
            return self._base + timedelta(milliseconds=ms)
        return lean_time_to_utc(self.day, ms)

    def _base_fields(self, line_no: int) -> dict[str, object]:
        return {"symbol": self.symbol, self.id_field: f"{self.name}:{line_no}", "currency": "USD"}

    def _reject(
        self, line_no: int, fields: dict[str, object], raw: bytes, why: str
    ) -> SourceRecord:
        return SourceRecord(self.name, line_no, fields, raw, why, self.kind)

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield one record per line; a line without cells or with a bad one is rejected."""
        record = self._row_reader()
        for line_no, raw, cols in self._lines():
            fields = self._base_fields(line_no)
            if isinstance(cols, str):
                yield self._reject(line_no, fields, raw, cols)
                continue
            try:
                fields["event_time"] = self._event_time(_time_of_day(cols))
                row = record(line_no, raw, cols, fields)
            except _BadCellError as exc:
                yield self._reject(line_no, fields, raw, exc.reason)
                continue
            yield row

    @abstractmethod
    def _row_reader(self) -> _RowReader:
        """A new pass's reader of the rows whose cells split and whose time parses.

        It adds its fields to ``fields`` (the base fields and the event time), and raises
        :class:`_BadCellError` for a bad cell before it changes anything else.
        """


class LeanTradeFile(_LeanFile):
    """The trades of one LEAN tick trade file, as source records."""

    kind: RecordKind = "trade"
    columns = 6
    id_field = "trade_id"

    def _row_reader(self) -> _RowReader:
        return self._trade

    def _trade(
        self, line_no: int, raw: bytes, cols: list[str], fields: dict[str, object]
    ) -> SourceRecord:
        exchange, condition, suspicious = cols[3:]
        fields["price"] = _price(cols, 2, "price")
        fields["size"] = _size(cols, 3, "size")
        fields["exchange"] = exchange
        fields["conditions"] = (condition,) if condition else ()
        return SourceRecord(self.name, line_no, fields, raw, _suspicious(suspicious, 6))


class LeanQuoteFile(_LeanFile):
    """The top-of-book quotes of one LEAN tick quote file, as source records (one per row)."""

    kind: RecordKind = "quote"
    columns = 8
    id_field = "quote_id"

    def _row_reader(self) -> _RowReader:
        """Rows read as the book after their update; the book starts empty at every pass."""
        bid: tuple[float, int] | None = None
        ask: tuple[float, int] | None = None

        def quote(
            line_no: int, raw: bytes, cols: list[str], fields: dict[str, object]
        ) -> SourceRecord:
            nonlocal bid, ask
            exchange, condition, flag = cols[5:]
            row_bid = (_price(cols, 2, "bid price"), _size(cols, 3, "bid size"))
            row_ask = (_price(cols, 4, "ask price"), _size(cols, 5, "ask size"))
            fields["exchange"] = exchange or None
            fields["conditions"] = (condition,) if condition else ()
            reject = _suspicious(flag, 8)
            new_bid = row_bid if row_bid != (0.0, 0) else bid
            new_ask = row_ask if row_ask != (0.0, 0) else ask
            if reject is None and row_bid == row_ask == (0.0, 0):
                reject = "empty_quote: the row quotes neither side"
            for side, value in (("bid", new_bid), ("ask", new_ask)):
                if value is not None:
                    fields[f"{side}_price"], fields[f"{side}_size"] = value
            if reject is None and (new_bid is None or new_ask is None):
                missing = "bid" if new_bid is None else "ask"
                reject = f"one_sided: no {missing} quoted yet in this file"
            if reject is None or reject.startswith("one_sided"):
                # Only usable sides enter the book; validation rejects the others with a reason.
                bid = new_bid if _usable(new_bid) else bid
                ask = new_ask if _usable(new_ask) else ask
            return SourceRecord(self.name, line_no, fields, raw, reject, self.kind)

        return quote


def _usable(side: tuple[float, int] | None) -> bool:
    return side is not None and side[0] > 0 and side[1] >= 0
