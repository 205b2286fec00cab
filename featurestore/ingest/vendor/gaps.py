"""Finding the minutes a symbol lacks: the store's 1-minute bars against the trading calendar.

A minute of the regular session (:mod:`~featurestore.ingest.vendor.calendar`) is *present* for a
symbol when the offline bars table holds a row of that symbol within it (the processors write a
row per trade, so a minute with a trade has rows); otherwise it is *missing*. Consecutive
missing minutes make one :class:`Gap`, which the healer backfills through REST.

A minute in which the symbol did not trade at all looks missing too: its backfill asks the vendor,
gets nothing, and sends nothing (the heal reports how many gaps came back empty). Minutes younger
than the settle time are never gaps: the processors may still be writing them.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Protocol

import psycopg
from psycopg import sql

from featurestore.error_maps import postgres_error
from featurestore.errors import ConfigurationError
from featurestore.ingest.vendor.calendar import session_minutes
from featurestore.offline.tables import table_identifier

__all__ = ["BarsTable", "Gap", "MinuteSource", "find_gaps"]

_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Gap:
    """Consecutive session minutes ``[start, end)`` of one symbol without bars."""

    symbol: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        """How many minutes the gap spans."""
        return int((self.end - self.start) / _MINUTE)


class MinuteSource(Protocol):
    """Where the minutes present in the store come from."""

    def present(
        self, symbols: Collection[str], start: datetime, end: datetime
    ) -> Mapping[str, set[datetime]]:
        """The starts (UTC) of the minutes in ``[start, end)`` that hold a bar, per symbol."""
        ...


def find_gaps(
    present: Mapping[str, set[datetime]],
    symbols: Iterable[str],
    start: datetime,
    end: datetime,
) -> list[Gap]:
    """The gaps of each symbol: session minutes of ``[start, end)`` not in ``present``."""
    minutes = list(session_minutes(start, end))
    gaps: list[Gap] = []
    for symbol in symbols:
        have = present.get(symbol, set())
        run_start: datetime | None = None
        previous: datetime | None = None
        for minute in minutes:
            if minute in have:
                continue
            if run_start is not None and previous is not None and minute == previous + _MINUTE:
                previous = minute
                continue
            if run_start is not None and previous is not None:
                gaps.append(Gap(symbol, run_start, previous + _MINUTE))
            run_start = previous = minute
        if run_start is not None and previous is not None:
            gaps.append(Gap(symbol, run_start, previous + _MINUTE))
    return gaps


class BarsTable:
    """The minutes present in the offline bars table (``bars_1m`` by default)."""

    def __init__(self, dsn: str, table: str = "bars_1m", key: str = "symbol") -> None:
        """Read ``table`` (keyed by ``key`` and ``event_timestamp``) through ``dsn``."""
        self._dsn = dsn
        self.table = table
        self.key = key

    def present(
        self, symbols: Collection[str], start: datetime, end: datetime
    ) -> dict[str, set[datetime]]:
        """The minutes holding a row, per symbol, in ``[start, end)``.

        Raises:
            ConfigurationError: the table or its column does not exist.
            BackendUnavailableError: PostgreSQL cannot be reached.
        """
        query = sql.SQL(
            "SELECT {key}, date_trunc('minute', event_timestamp) FROM {table}"
            " WHERE {key} = ANY(%s) AND event_timestamp >= %s AND event_timestamp < %s"
            " GROUP BY 1, 2"
        ).format(key=sql.Identifier(self.key), table=table_identifier(self.table))
        out: dict[str, set[datetime]] = {s: set() for s in symbols}
        try:
            with psycopg.connect(self._dsn, connect_timeout=10) as conn:
                rows = conn.execute(query, (list(symbols), start, end)).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise ConfigurationError(
                f"the bars table {self.table}({self.key}, event_timestamp) does not exist"
                f" (FEATURESTORE_VENDOR__BARS_TABLE): {exc.diag.message_primary}"
            ) from exc
        except psycopg.OperationalError as exc:
            raise postgres_error(exc, f"reading {self.table}") from exc
        for symbol, minute in rows:
            out.setdefault(symbol, set()).add(minute)
        return out
