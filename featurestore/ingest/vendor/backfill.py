"""REST backfills into the event log: a date range, a reconnect's missed span, the gaps' minutes.

Each backfill reads the vendor's records of its range per symbol (time-ordered by the API) and
merges them by event time, so each partition receives them in time order. Records whose id is
already in the log, or was sent by this process a moment ago, are dropped by :class:`CopyFilter`
before they are sent: the log holds each vendor trade once (see
:mod:`~featurestore.ingest.vendor.dedupe`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.sources.base import merge_by_event_time
from featurestore.ingest.vendor.dedupe import RecentIds
from featurestore.ingest.vendor.gaps import Gap
from featurestore.ingest.vendor.gaps import MinuteSource
from featurestore.ingest.vendor.gaps import find_gaps
from featurestore.ingest.vendor.rest import RestClient

__all__ = ["CopyFilter", "Healer", "record_id", "settled_gaps", "vendor_records"]

LoggedIds = Callable[[RecordKind, Collection[str], datetime, datetime], set[str]]
"""``(kind, symbols, start, end) -> ids already in the kind's topic`` (:func:`logged_ids`)."""


def record_id(record: SourceRecord) -> tuple[str, datetime] | None:
    """The event id and time of a record that has both (a rejected record may have neither)."""
    name = "trade_id" if record.kind == "trade" else "quote_id"
    found = record.fields.get(name)
    when = record.fields.get("event_time")
    if isinstance(found, str) and isinstance(when, datetime):
        return found, when
    return None


@dataclass
class CopyFilter:
    """Drops records whose id was sent already: recently by this process, or found in the log."""

    recent: RecentIds = field(default_factory=RecentIds)
    logged: set[str] = field(default_factory=set)
    copies: int = 0
    """Records dropped as copies."""

    def fresh(self, record: SourceRecord) -> bool:
        """Whether to send the record (and remember its id); rejects always pass (dead letters)."""
        if record.reject is not None:
            return True
        found = record_id(record)
        if found is None:
            return True
        if found[0] in self.logged or not self.recent.add(*found):
            self.copies += 1
            return False
        return True

    def filter(self, records: Iterable[SourceRecord]) -> Iterator[SourceRecord]:
        """The fresh records of ``records``."""
        return (r for r in records if self.fresh(r))


def vendor_records(
    rest: RestClient,
    kinds: Sequence[RecordKind],
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
) -> Iterator[SourceRecord]:
    """The vendor's records of ``kinds`` for ``symbols`` in ``[start, end)``, merged by time."""
    streams = [
        rest.records(kind, symbol, start, end)  # type: ignore[arg-type]
        for symbol in symbols
        for kind in kinds
    ]
    return merge_by_event_time(streams)


def settled_gaps(
    minutes: MinuteSource,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
    settle: timedelta,
) -> list[Gap]:
    """The gaps of ``symbols`` in ``[start, min(end, now - settle))`` (no vendor needed)."""
    end = min(end, now - settle)
    if end <= start:
        return []
    return find_gaps(minutes.present(symbols, start, end), symbols, start, end)


@dataclass
class HealReport:
    """What one heal found and asked for."""

    gaps: list[Gap] = field(default_factory=list)
    empty: int = 0
    """Gaps the vendor had no trades for (the symbol did not trade in those minutes)."""
    records: int = 0
    """Records the vendor returned for the gaps (copies included)."""


class Healer:
    """Finds each symbol's missing minutes and reads their trades from the vendor."""

    def __init__(
        self,
        minutes: MinuteSource,
        rest: RestClient,
        logged: LoggedIds,
        *,
        settle: timedelta = timedelta(minutes=5),
    ) -> None:
        """Find gaps with ``minutes`` and fill them from ``rest`` (see the class's fields)."""
        self.minutes = minutes
        self.rest = rest
        self.logged = logged
        self.settle = settle

    def gaps(
        self, symbols: Sequence[str], start: datetime, end: datetime, now: datetime
    ) -> list[Gap]:
        """The gaps of ``symbols`` in ``[start, min(end, now - settle))``."""
        return settled_gaps(self.minutes, symbols, start, end, now, self.settle)

    def records(
        self, gaps: Sequence[Gap], report: HealReport, copies: CopyFilter
    ) -> Iterator[SourceRecord]:
        """The trades of every gap not yet in the log, gap after gap.

        The log is read once over the span of all gaps, for the ids it already holds.
        """
        report.gaps = list(gaps)
        if not gaps:
            return
        symbols = sorted({g.symbol for g in gaps})
        copies.logged |= self.logged(
            "trade", symbols, min(g.start for g in gaps), max(g.end for g in gaps)
        )
        for gap in gaps:
            got = 0
            for record in self.rest.records("trade", gap.symbol, gap.start, gap.end):
                got += 1
                if copies.fresh(record):
                    yield record
            report.records += got
            report.empty += got == 0
