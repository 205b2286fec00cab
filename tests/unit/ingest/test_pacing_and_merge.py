from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

import featurestore.ingest as ingest
from featurestore.errors import ConfigurationError
from featurestore.ingest import Pacer
from featurestore.ingest import SourceRecord
from featurestore.ingest import merge_by_event_time
from featurestore.ingest.paths import market_data_dir
from featurestore.ingest.paths import shared_dir

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacing_follows_event_time_deltas_at_speed() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, idle=clock.sleep, clock=clock)
    pacer.wait(T0)
    pacer.wait(T0 + timedelta(seconds=5))  # due 0.5 s later at 10x
    assert clock.now == pytest.approx(100.5)
    pacer.wait(T0 + timedelta(seconds=1))  # out of order: not held back
    assert clock.now == pytest.approx(100.5)


def test_no_speed_means_no_waiting() -> None:
    clock = FakeClock()
    pacer = Pacer(None, idle=clock.sleep, clock=clock)
    pacer.wait(T0)
    pacer.wait(T0 + timedelta(hours=1))
    assert clock.slept == []
    with pytest.raises(ValueError):
        Pacer(0)


def test_merge_interleaves_by_event_time_and_keeps_rejects_in_place() -> None:
    def rec(src: str, line: int, seconds: float | None) -> SourceRecord:
        fields = {} if seconds is None else {"event_time": T0 + timedelta(seconds=seconds)}
        return SourceRecord(src, line, fields)

    a = [rec("a", 1, 1), rec("a", 2, None), rec("a", 3, 5)]
    b = [rec("b", 1, 0), rec("b", 2, 3), rec("b", 3, 6)]
    merged = [(r.source, r.line) for r in merge_by_event_time([a, b])]
    assert merged == [("b", 1), ("a", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]


def test_shared_dir_is_overridable_and_fails_loudly(tmp_path) -> None:
    assert shared_dir({"FEATURESTORE_SHARED_DIR": str(tmp_path)}) == tmp_path
    with pytest.raises(ConfigurationError):
        shared_dir({"FEATURESTORE_SHARED_DIR": str(tmp_path / "missing")})
    with pytest.raises(ConfigurationError):
        market_data_dir({"FEATURESTORE_SHARED_DIR": str(tmp_path)})


def test_public_surface() -> None:
    for name in ingest.__all__:
        assert hasattr(ingest, name), name


def test_a_live_stream_is_held_until_each_events_own_time() -> None:
    clock = FakeClock()
    wall = 1_000.0  # the wall clock's epoch seconds when the monotonic clock reads 100
    pacer = Pacer(
        1.0, idle=clock.sleep, clock=clock, live=True, wall=lambda: wall + clock.now - 100
    )
    start = datetime.fromtimestamp(999.4, UTC)  # "now to the second", 0.6 s before the wall
    pacer.wait(start)  # already past: not held
    assert clock.slept == []
    pacer.wait(start + timedelta(seconds=2))  # its own time is 1,001.4: 1.4 s from now
    assert clock.now == pytest.approx(101.4)
    # Not live: anchored at the first event, the same stream runs 0.6 s behind its stamps.
    other = FakeClock()
    anchored = Pacer(1.0, idle=other.sleep, clock=other)
    anchored.wait(start)
    anchored.wait(start + timedelta(seconds=2))
    assert other.now == pytest.approx(102.0)
