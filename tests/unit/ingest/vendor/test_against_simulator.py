"""The adapter against the local vendor simulator (loopback; no Kafka): protocol, faults, copies.

These run the real WebSocket and HTTP clients over loopback sockets; only the vendor is a
stand-in (tests/vendor_sim.py).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time as clock
from datetime import timedelta

import pytest
from pydantic import SecretStr

from featurestore.errors import ConfigurationError
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.validate import validate_quote
from featurestore.ingest.validate import validate_trade
from featurestore.ingest.vendor import LiveFeed
from featurestore.ingest.vendor import RestClient
from featurestore.ingest.vendor import VendorStream
from featurestore.resilience import Backoff
from tests.vendor_sim import VendorSimulator
from tests.vendor_sim import load_tape

DAY = date(2013, 10, 7)
FAST = Backoff(initial_s=0.05, max_s=0.2)
KEY = SecretStr("test-key")


@pytest.fixture(scope="module")
def tape() -> list:  # type: ignore[type-arg]
    return load_tape(DAY, ["IBM", "AIG"], clock(9, 30), clock(9, 33), quotes=True)


def _tape_ids(tape: list) -> Counter[str]:  # type: ignore[type-arg]
    """The event ids the tape's records map to (through the adapter's own WebSocket mapping)."""
    from featurestore.ingest.vendor import ws_record

    out: Counter[str] = Counter()
    for event in tape:
        record = ws_record(event.ws, 0)
        assert record is not None
        event_id = record.fields.get("trade_id") or record.fields.get("quote_id")
        out[str(event_id)] += 1
    return out


class Collect:
    def __init__(self) -> None:
        self.records: list[SourceRecord] = []
        self.breaks: list[str] = []
        self.connections = 0

    def record(self, record: SourceRecord) -> None:
        self.records.append(record)

    def disconnected(self, reason: str) -> None:
        self.breaks.append(reason)

    def connected(self, count: int) -> None:
        self.connections = count


def _run_until(stream: VendorStream, listener: Collect, done: object, timeout: float = 20) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stream.run, args=(listener, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_stream_reconnects_resubscribes_and_misses_what_was_sent_meanwhile(tape) -> None:
    with VendorSimulator(tape, drops=[500, 1500], lost=100) as sim:
        stream = VendorStream(sim.ws_url, KEY, ["IBM", "AIG"], quotes=True, backoff=FAST)
        got = Collect()
        _run_until(stream, got, lambda: sim.finished and len(got.records) >= sim.stats.ws_sent)
    assert sim.stats.drops == 2 and sim.stats.connections == 3
    assert stream.connections == 3 and len(got.breaks) == 2
    assert len(got.records) == sim.stats.ws_sent == len(tape) - 200
    assert all(r.reject is None for r in got.records)
    kinds = Counter(r.kind for r in got.records)
    assert kinds["trade"] > 0 and kinds["quote"] > 0  # both channels subscribed each time


def test_the_stream_subscribes_only_to_what_it_was_asked(tape) -> None:
    with VendorSimulator(tape) as sim:
        stream = VendorStream(sim.ws_url, KEY, ["AIG"], quotes=False, backoff=FAST)
        got = Collect()
        _run_until(stream, got, lambda: sim.finished and len(got.records) >= sim.stats.ws_sent)
    assert {(r.kind, r.fields["symbol"]) for r in got.records} == {("trade", "AIG")}
    assert len(got.records) == sum(1 for e in tape if e.channel == "T" and e.symbol == "AIG")


def test_a_refused_key_ends_the_stream_with_a_clear_error(tape) -> None:
    with VendorSimulator(tape) as sim:
        stream = VendorStream(sim.ws_url, SecretStr("wrong"), ["IBM"], backoff=FAST)
        with pytest.raises(ConfigurationError, match="refused the API key") as caught:
            stream.run(Collect(), threading.Event())
    assert "wrong" not in str(caught.value)


def test_backoff_between_reconnects_grows_and_is_capped() -> None:
    backoff = Backoff(initial_s=0.5, max_s=30.0)
    full = [backoff.delay(n, draw=0.0) for n in range(1, 10)]
    assert full == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    jittered = [backoff.delay(3) for _ in range(200)]
    assert min(jittered) >= 1.0 and max(jittered) <= 2.0 and len(set(jittered)) > 1


def test_rest_pages_through_next_url_and_waits_out_rate_limits(tape) -> None:
    waits: list[float] = []
    with VendorSimulator(tape, page_size=100, rate_limit_every=3, retry_after="2") as sim:
        client = RestClient(sim.rest_url, KEY, sleep=waits.append, backoff=FAST)
        start = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
        records = list(client.records("trade", "IBM", start, start + timedelta(minutes=3)))
    expected = [e for e in tape if e.channel == "T" and e.symbol == "IBM"]
    assert [r.fields["trade_id"] for r in records] == [validate_trade(r).trade_id for r in records]
    assert len(records) == len(expected) and all(r.reject is None for r in records)
    assert client.stats.pages == -(-len(expected) // 100)
    assert client.stats.rate_limited == sim.stats.rate_limited > 0
    assert waits == [2.0] * sim.stats.rate_limited  # as Retry-After said


def test_rest_quotes_validate(tape) -> None:
    with VendorSimulator(tape, page_size=500) as sim:
        client = RestClient(sim.rest_url, KEY)
        start = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
        quotes = [
            validate_quote(r)
            for r in client.records("quote", "IBM", start, start + timedelta(minutes=1))
        ]
    assert quotes and all(q.bid_price <= q.ask_price for q in quotes)


def test_rest_with_a_refused_key_fails_at_once_without_showing_it(tape) -> None:
    with VendorSimulator(tape) as sim:
        client = RestClient(sim.rest_url, SecretStr("wrong-key"))
        start = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
        with pytest.raises(ConfigurationError, match="HTTP 401 Unknown API Key") as caught:
            list(client.records("trade", "IBM", start, start + timedelta(minutes=1)))
    assert "wrong-key" not in str(caught.value)
    assert sim.stats.rest_requests == 1


def test_the_live_feed_yields_every_vendor_record_once_through_breaks(tape) -> None:
    """Breaks lose events on the WebSocket; the REST backfill of each break brings them back,
    overlapping what the WebSocket delivered, no record comes out twice, and the order is kept."""
    with VendorSimulator(tape, drops=[700, 2000], lost=150, page_size=200) as sim:
        stop = threading.Event()
        feed = LiveFeed(
            VendorStream(sim.ws_url, KEY, ["IBM", "AIG"], backoff=FAST),
            RestClient(sim.rest_url, KEY),
            ["IBM", "AIG"],
            stop=stop,
        )
        expected = _tape_ids(tape)
        got: Counter[str] = Counter()
        times: list[datetime] = []
        deadline = time.monotonic() + 30

        def watch() -> None:
            while time.monotonic() < deadline and not stop.is_set():
                if sim.finished and feed.stats.gap_backfills == 2 and len(got) == len(expected):
                    time.sleep(0.5)  # anything late would show up as a copy
                    stop.set()
                time.sleep(0.05)
            stop.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for record in feed:
            got[str(record.fields.get("trade_id") or record.fields.get("quote_id"))] += 1
            times.append(record.fields["event_time"])  # type: ignore[arg-type]
        watcher.join()
    assert sim.stats.drops == 2
    assert feed.stats.gap_backfills == 2 and feed.stats.failures == 0
    assert feed.copies.copies > 0  # the backfills overlapped what the stream had delivered
    assert got == expected  # every record once
    # ... and in event-time order through the breaks: what a break missed is sent before what
    # came after it (the processors would take older records after newer ones as late).
    assert times == sorted(times)


class _Minutes:
    """The bars table's minutes, as an in-memory MinuteSource: the tape's, less a removed range."""

    def __init__(self, tape: list, removed: tuple[datetime, datetime]) -> None:  # type: ignore[type-arg]
        self.minutes: dict[str, set[datetime]] = {}
        for e in tape:
            when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=e.sip_ns // 1000)
            if e.channel == "T" and not removed[0] <= when < removed[1]:
                minute = when.replace(second=0, microsecond=0)
                self.minutes.setdefault(e.symbol, set()).add(minute)

    def present(self, symbols, start, end):
        return {s: {m for m in self.minutes.get(s, set()) if start <= m < end} for s in symbols}


def test_the_live_feed_heals_on_its_schedule(tape) -> None:
    """The scheduled heal finds the removed minutes and reads them again; what the stream also
    delivered is dropped as a copy, so each record still comes out once."""
    from featurestore.ingest.vendor import Healer

    opened = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
    removed = (opened + timedelta(minutes=1), opened + timedelta(minutes=2))
    with VendorSimulator(tape, page_size=200) as sim:
        stop = threading.Event()
        rest = RestClient(sim.rest_url, KEY)
        asked: list[tuple[str, datetime, datetime]] = []

        def logged(kind, symbols, start, end):
            asked.append((kind, start, end))
            return set()

        feed = LiveFeed(
            VendorStream(sim.ws_url, KEY, ["IBM", "AIG"], backoff=FAST),
            rest,
            ["IBM", "AIG"],
            healer=Healer(_Minutes(tape, removed), rest, logged, settle=timedelta(0)),
            heal_interval=timedelta(hours=1),
            clock=lambda: opened + timedelta(minutes=3),
            stop=stop,
        )
        expected = _tape_ids(tape)
        got: Counter[str] = Counter()
        deadline = time.monotonic() + 30

        def watch() -> None:
            while time.monotonic() < deadline:
                if sim.finished and feed.stats.heals == 1 and len(got) == len(expected):
                    time.sleep(0.5)
                    break
                time.sleep(0.05)
            stop.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for record in feed:
            got[str(record.fields.get("trade_id") or record.fields.get("quote_id"))] += 1
        watcher.join()
    assert feed.stats.heals == 1 and feed.stats.heal_gaps == 2  # the minute, for each symbol
    assert asked == [("trade", removed[0], removed[1])]  # the log read over the gaps only
    assert feed.copies.copies > 0  # the stream had delivered the healed minute too
    assert got == expected
