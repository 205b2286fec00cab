"""Gaps from present minutes, and dropping copies by id."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.vendor import CopyFilter
from featurestore.ingest.vendor import Gap
from featurestore.ingest.vendor import RecentIds
from featurestore.ingest.vendor import find_gaps

OPEN = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
M = timedelta(minutes=1)


def test_missing_minutes_become_gaps_of_consecutive_minutes() -> None:
    start, end = OPEN, OPEN + 30 * M
    all_minutes = {OPEN + i * M for i in range(30)}
    present = {"IBM": all_minutes - {OPEN + i * M for i in (3, 4, 5, 20)}, "AIG": all_minutes}
    gaps = find_gaps(present, ["IBM", "AIG", "BAC"], start, end)
    assert gaps == [
        Gap("IBM", OPEN + 3 * M, OPEN + 6 * M),
        Gap("IBM", OPEN + 20 * M, OPEN + 21 * M),
        Gap("BAC", OPEN, OPEN + 30 * M),
    ]
    assert [g.minutes for g in gaps] == [3, 1, 30]


def test_minutes_outside_the_session_are_never_gaps() -> None:
    before_open = OPEN - 60 * M
    assert find_gaps({"IBM": set()}, ["IBM"], before_open, OPEN) == []
    saturday = datetime(2013, 10, 5, 14, tzinfo=UTC)
    assert find_gaps({}, ["IBM"], saturday, saturday + 60 * M) == []


def _trade(trade_id: str, when: datetime, reject: str | None = None) -> SourceRecord:
    return SourceRecord("t", 1, {"trade_id": trade_id, "event_time": when}, None, reject, "trade")


def test_copies_are_dropped_by_id_whatever_their_source() -> None:
    copies = CopyFilter(logged={"in-log"})
    records = [
        _trade("a", OPEN),
        _trade("b", OPEN + M),
        _trade("a", OPEN),  # a reconnect backfill's overlap
        _trade("in-log", OPEN),  # already in the log
        _trade("c", OPEN, reject="unparsable: x"),  # rejects pass, to be dead-lettered
        _trade("c", OPEN, reject="unparsable: x"),
    ]
    kept = [r.fields["trade_id"] for r in copies.filter(records)]
    assert kept == ["a", "b", "c", "c"]
    assert copies.copies == 2


def test_recent_ids_forget_what_is_older_than_the_window() -> None:
    recent = RecentIds(window=timedelta(minutes=10))
    assert recent.add("old", OPEN)
    assert not recent.add("old", OPEN)
    assert recent.add("new", OPEN + 11 * M)
    assert "old" not in recent and "new" in recent and len(recent) == 1
