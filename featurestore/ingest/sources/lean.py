"""Adapter for the LEAN / AlgoSeek equity tick trade files (``<date>_<symbol>_Trade_Tick.csv``).

The format, one file per symbol and day, no header, sorted by time:

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

The symbol and the date come from the file name (``20131007_aig_Trade_Tick.csv[.gz]``). The
time is a wall-clock time of day in New York, as LEAN reads it (the date plus the elapsed
milliseconds, localised), converted to UTC with the offset in force at that moment: EDT
(UTC-4) in summer, EST (UTC-5) in winter, and per row on the days the clocks change.

Stated rule for the vendor's flag: a row with the suspicious flag set is a real record that is
not trusted; it is rejected with reason ``suspicious: flagged by the vendor`` and goes to the
dead-letter topic. Rows that cannot be parsed are rejected with ``unparsable: ...``.

The trade id is ``<file name>:<line>``, so replaying the same file twice produces the same ids.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from io import BufferedIOBase
from pathlib import Path
from zoneinfo import ZoneInfo

from featurestore.errors import ValidationError
from featurestore.ingest.sources.base import SourceRecord

__all__ = ["LEAN_FILE_PATTERN", "LeanTradeFile", "lean_time_to_utc"]

NEW_YORK = ZoneInfo("America/New_York")
LEAN_FILE_PATTERN = re.compile(
    r"^(?P<date>\d{8})_(?P<symbol>[A-Za-z0-9.\-]+)_trade_tick\.csv(?:\.gz)?$", re.IGNORECASE
)
PRICE_SCALE = 10_000
SUSPICIOUS_REASON = "suspicious: flagged by the vendor (column 6 = 1)"
_DAY = timedelta(days=1)


def lean_time_to_utc(day: date, ms_since_midnight: int) -> datetime:
    """Convert a LEAN time of day (wall clock, New York) on ``day`` to an aware UTC datetime."""
    local = datetime.combine(day, time()) + timedelta(milliseconds=ms_since_midnight)
    return local.replace(tzinfo=NEW_YORK).astimezone(UTC)


class LeanTradeFile:
    """The trades of one LEAN tick file, as source records."""

    def __init__(self, path: Path) -> None:
        """Open a LEAN file by path; the name must follow ``<yyyymmdd>_<symbol>_Trade_Tick``.

        Raises:
            ValidationError: the file name does not follow the LEAN pattern.

        """
        match = LEAN_FILE_PATTERN.match(path.name)
        if match is None:
            raise ValidationError(
                f"{path.name}: not a LEAN tick trade file name"
                " (<yyyymmdd>_<symbol>_Trade_Tick.csv)",
                field="path",
            )
        self.path = path
        self.name = path.name
        self.symbol = match["symbol"].upper()
        self.day = datetime.strptime(match["date"], "%Y%m%d").date()

    @classmethod
    def matches(cls, path: Path) -> bool:
        """Tell whether a file name follows the LEAN tick trade pattern."""
        return LEAN_FILE_PATTERN.match(path.name) is not None

    def _open(self) -> BufferedIOBase:
        if self.path.suffix == ".gz":
            return gzip.open(self.path, "rb")
        return self.path.open("rb")

    def _fixed_offset_base(self) -> datetime | None:
        """Return UTC midnight-of-day when one UTC offset holds all day, else ``None`` (DST day)."""
        start = datetime.combine(self.day, time()).replace(tzinfo=NEW_YORK)
        end = (datetime.combine(self.day, time()) + _DAY - timedelta(milliseconds=1)).replace(
            tzinfo=NEW_YORK
        )
        if start.utcoffset() != end.utcoffset():
            return None
        return start.astimezone(UTC)

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield one record per line."""
        base = self._fixed_offset_base()
        with self._open() as handle:
            for line_no, line in enumerate(handle, start=1):
                raw = line.rstrip(b"\r\n")
                if not raw:
                    continue
                yield self._record(line_no, raw, base)

    def _record(self, line_no: int, raw: bytes, base: datetime | None) -> SourceRecord:
        trade_id = f"{self.name}:{line_no}"
        cols = raw.decode("ascii", errors="replace").split(",")
        fields: dict[str, object] = {
            "symbol": self.symbol,
            "trade_id": trade_id,
            "currency": "USD",
        }
        if len(cols) != 6:
            return SourceRecord(
                self.name, line_no, fields, raw, f"unparsable: expected 6 columns, got {len(cols)}"
            )
        ms, price, size, exchange, condition, suspicious = (c.strip() for c in cols)
        try:
            ms_value = int(ms)
            fields["event_time"] = (
                base + timedelta(milliseconds=ms_value)
                if base is not None
                else lean_time_to_utc(self.day, ms_value)
            )
            fields["price"] = int(price) / PRICE_SCALE
            fields["size"] = int(size)
        except ValueError as exc:
            return SourceRecord(self.name, line_no, fields, raw, f"unparsable: {exc}")
        fields["exchange"] = exchange
        fields["conditions"] = (condition,) if condition else ()
        reject = None
        if suspicious not in ("0", ""):
            reject = SUSPICIOUS_REASON if suspicious == "1" else f"unparsable: flag {suspicious!r}"
        return SourceRecord(self.name, line_no, fields, raw, reject)
