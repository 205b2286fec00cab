"""Pacing a replay by event time: as fast as possible, or at a multiple of real time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

__all__ = ["Pacer"]


class Pacer:
    """Holds each event back until its event-time delta from the first, divided by ``speed``.

    ``speed=None`` means as fast as possible; ``speed=10`` replays ten seconds of event time per
    second. Events whose time goes backwards are sent at once. While waiting, ``idle`` is
    called with the time left (the producer's ``poll``, so deliveries keep being served).

    ``live``: the event times are the wall clock's (a generator started at "now"), so each event
    is held until its own time rather than its delta from the first: its Kafka timestamp (the
    event time) is then when it was sent. Anchored at the first event instead, every event of a
    live stream went out as late as the stream took to start (1.7 s measured with ``ingest
    synthetic``), and the processors' freshness, write time - Kafka timestamp, counted it.
    """

    def __init__(
        self,
        speed: float | None,
        *,
        idle: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        live: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """Pace at ``speed`` times real time, or not at all when ``None``."""
        if speed is not None and speed <= 0:
            raise ValueError("speed must be > 0 (or None for as fast as possible)")
        self.speed = speed
        self._idle = idle
        self._clock = clock
        self._live = live
        self._wall = wall
        self._origin: tuple[float, float] | None = None

    def wait(self, event_time: datetime) -> float:
        """Return after the event is due; the result is how long this call waited (s)."""
        if self.speed is None:
            return 0.0
        ts = event_time.timestamp()
        now = self._clock()
        if self._origin is None:
            if not self._live:
                self._origin = (now, ts)
                return 0.0
            self._origin = (now + ts - self._wall(), ts)
        wall0, ts0 = self._origin
        due = wall0 + (ts - ts0) / self.speed
        waited = 0.0
        while now < due:
            step = min(due - now, 0.1)
            self._idle(step)
            waited += step
            now = self._clock()
        return waited
