"""The live feed: the vendor's WebSocket, the REST backfill of what a reconnect missed, and heals.

Three threads feed one queue that the ingest loop reads (:meth:`LiveFeed.__iter__`):

- the stream (:class:`~featurestore.ingest.vendor.stream.VendorStream`) puts trades and quotes
  as they arrive, and markers when the connection breaks and when it is subscribed again;
- the backfill worker reads, through REST, (a) the span a break missed: from ``overlap`` before
  the last record received before the break to ``overlap`` after the new connection is
  subscribed (the clock's time), for every symbol and kind; (b) every ``heal_interval`` the
  gaps of the bars table over the last ``heal_days`` sessions
  (:class:`~featurestore.ingest.vendor.backfill.Healer`), dropping ids the log already holds;
- the ingest loop's own thread takes records off the queue and drops copies by id
  (:class:`~featurestore.ingest.vendor.backfill.CopyFilter`): the overlaps above are on purpose,
  and only this one thread decides what is sent, so each vendor record is sent once.

Order across a break. The processors take a record as *late* when its minute closed before
newer records of its partition in the log (``processors/README.md``), so a break's missed span
must enter the log before what the WebSocket sends after the break. From the reconnect until
that span's REST backfill is in, the stream's records are held; then the held
records and the backfilled ones are sent together, in event-time order. The log therefore stays
in event-time order through breaks (a scheduled heal's records, hours old, are late for the
running processors whatever is done here).

Stopping (``stop`` set by SIGTERM/SIGINT) ends the iteration; what was queued and not yet
taken is not sent, and the next heal finds it missing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from featurestore.errors import FeatureStoreError
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.vendor.backfill import CopyFilter
from featurestore.ingest.vendor.backfill import Healer
from featurestore.ingest.vendor.backfill import HealReport
from featurestore.ingest.vendor.backfill import vendor_records
from featurestore.ingest.vendor.calendar import session
from featurestore.ingest.vendor.calendar import trading_days
from featurestore.ingest.vendor.records import WS_SOURCE
from featurestore.ingest.vendor.rest import RestClient
from featurestore.ingest.vendor.stream import VendorStream

__all__ = ["LiveFeed", "LiveStats", "heal_window"]

logger = logging.getLogger(__name__)


@dataclass
class LiveStats:
    """What the live feed did besides streaming (read by tests and logs)."""

    gap_backfills: int = 0
    """Spans missed by a break and read again through REST."""
    heals: int = 0
    heal_gaps: int = 0
    """Gaps found by the heals, all together."""
    failures: int = 0
    """Backfills or heals that failed (logged; the next heal retries their minutes)."""


@dataclass(frozen=True)
class _Disconnected:
    reason: str


@dataclass(frozen=True)
class _Connected:
    count: int


@dataclass(frozen=True)
class _Failed:
    error: FeatureStoreError


@dataclass(frozen=True)
class _Span:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _SpanRecords:
    """The REST records of one break's span (empty when its backfill failed)."""

    records: list[SourceRecord]


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _event_time(record: SourceRecord) -> datetime:
    when = record.fields.get("event_time")
    return when if isinstance(when, datetime) else _EARLIEST


def heal_window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """``[open of the session `days` trading days back (today's included), now)``."""
    day = now.astimezone(UTC).date()
    recent = list(trading_days(day - timedelta(days=7 * days + 7), day))
    first = recent[-days] if len(recent) >= days else recent[0]
    opened = session(first)
    assert opened is not None
    return opened[0], now


class LiveFeed:
    """Source records from the vendor, live, with reconnect backfills and scheduled heals."""

    kind: RecordKind = "trade"
    name = "polygon-live"

    def __init__(
        self,
        stream: VendorStream,
        rest: RestClient,
        symbols: Sequence[str],
        *,
        kinds: Sequence[RecordKind] = ("trade", "quote"),
        overlap: timedelta = timedelta(seconds=2),
        healer: Healer | None = None,
        heal_interval: timedelta | None = None,
        heal_days: int = 1,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        queue_size: int = 100_000,
    ) -> None:
        """Read ``stream`` live, backfill each break through ``rest`` and heal with ``healer``."""
        self.stream = stream
        self.rest = rest
        self.symbols = [s.upper() for s in symbols]
        self.kinds = tuple(kinds)
        self.overlap = overlap
        self.healer = healer
        self.heal_interval = heal_interval
        self.heal_days = heal_days
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stats = LiveStats()
        self.copies = CopyFilter()
        self._out: queue.Queue[object] = queue.Queue(queue_size)
        self._jobs: queue.Queue[_Span] = queue.Queue()
        self._last_ws: datetime | None = None
        self._gap_from: datetime | None = None
        self._pending = 0
        """Break spans submitted and not yet backfilled: records are held meanwhile."""
        self._held: list[SourceRecord] = []

    # -- the ingest loop's thread -------------------------------------------------------------

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield records until ``stop`` is set.

        Raises:
            ConfigurationError: the vendor refused the key or a request.
        """
        threads = [
            threading.Thread(target=self._run_stream, name="vendor-stream", daemon=True),
            threading.Thread(target=self._run_worker, name="vendor-backfill", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            while not self.stop.is_set():
                try:
                    item = self._out.get(timeout=0.5)
                except queue.Empty:
                    continue
                if isinstance(item, _Failed):
                    raise item.error
                if isinstance(item, _Disconnected):
                    if self._last_ws is not None and self._gap_from is None:
                        self._gap_from = self._last_ws - self.overlap
                    continue
                if isinstance(item, _Connected):
                    if self._gap_from is not None:
                        self._jobs.put(_Span(self._gap_from, self.clock() + self.overlap))
                        self._pending += 1
                        self._gap_from = None
                    continue
                if isinstance(item, _SpanRecords):
                    self._pending -= 1
                    self._held.extend(item.records)
                    if self._pending == 0:
                        released = sorted(self._held, key=_event_time)
                        self._held = []
                        yield from self.copies.filter(released)
                    continue
                assert isinstance(item, SourceRecord)
                if item.source == WS_SOURCE:
                    when = _event_time(item)
                    if self._last_ws is None or when > self._last_ws:
                        self._last_ws = when
                if self._pending:
                    self._held.append(item)
                elif self.copies.fresh(item):
                    yield item
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=5)

    # -- the other threads --------------------------------------------------------------------

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self._out.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _run_stream(self) -> None:
        feed = self

        class Listener:
            def record(self, record: SourceRecord) -> None:
                feed._put(record)

            def disconnected(self, reason: str) -> None:
                feed._put(_Disconnected(reason))

            def connected(self, count: int) -> None:
                feed._put(_Connected(count))

        try:
            self.stream.run(Listener(), self.stop)
        except FeatureStoreError as exc:
            self._put(_Failed(exc))

    def _run_worker(self) -> None:
        next_heal = self.clock() if self._heals() else None
        while not self.stop.is_set():
            try:
                span: _Span | None = self._jobs.get(timeout=0.5)
            except queue.Empty:
                span = None
            if span is not None:
                self._backfill(span)
            if next_heal is not None and self.clock() >= next_heal:
                self._heal()
                assert self.heal_interval is not None
                next_heal = self.clock() + self.heal_interval

    def _heals(self) -> bool:
        return self.healer is not None and bool(self.heal_interval)

    def _backfill(self, span: _Span) -> None:
        """Read a break's span and hand it over whole (the held stream records wait for it)."""
        logger.info("vendor: backfilling %s .. %s missed by a break", span.start, span.end)
        records: list[SourceRecord] = []
        try:
            records = list(
                vendor_records(self.rest, self.kinds, self.symbols, span.start, span.end)
            )
            self.stats.gap_backfills += 1
        except FeatureStoreError as exc:
            self.stats.failures += 1
            logger.error("vendor: the backfill of %s .. %s failed: %s", span.start, span.end, exc)
        self._put(_SpanRecords(records))

    def _heal(self) -> None:
        assert self.healer is not None
        now = self.clock()
        start, end = heal_window(now, self.heal_days)
        report = HealReport()
        try:
            gaps = self.healer.gaps(self.symbols, start, end, now)
            for record in self.healer.records(gaps, report, CopyFilter()):
                if not self._put(record):
                    return
            self.stats.heals += 1
            self.stats.heal_gaps += len(report.gaps)
            logger.info(
                "vendor heal: %d gaps (%d minutes), %d records from the vendor, %d gaps empty",
                len(report.gaps), sum(g.minutes for g in report.gaps), report.records, report.empty,
            )  # fmt: skip
        except FeatureStoreError as exc:
            self.stats.failures += 1
            logger.error("vendor heal failed: %s", exc)
