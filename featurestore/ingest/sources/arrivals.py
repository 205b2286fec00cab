"""When a synthetic generator's events happen: one Poisson process in event time, bounded.

Both generators (:mod:`.synthetic`, :mod:`.metrics`) draw their events in fixed-size blocks from
one ``numpy`` generator: first the block's gaps between arrivals, then whatever else the block
needs (who, how much). :class:`Arrivals` owns the first part and the bounds, so the order of the
draws, and with it every seeded stream, is that of the generator that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import numpy as np

from featurestore.errors import ConfigurationError

__all__ = ["BLOCK", "Arrivals", "GeneratorBounds"]

BLOCK = 4096
"""Events drawn at a time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratorBounds:
    """Where a generator starts and when it stops; the seed of its draws."""

    start: datetime
    """Event time of the first event (aware)."""
    seed: int = 0
    count: int | None = None
    """Stop after this many events."""
    duration_s: float | None = None
    """Stop when event time passes ``start + duration_s``."""

    def check_start(self, what: str) -> None:
        """Raise ConfigurationError, naming ``what``, when ``start`` is naive."""
        if self.start.tzinfo is None:
            raise ConfigurationError(f"{what}: start must be timezone-aware")


class Arrivals:
    """``rate`` events per second of event time from ``bounds.start``, until a bound is reached."""

    def __init__(self, rng: np.random.Generator, rate: float, bounds: GeneratorBounds) -> None:
        """Draw from ``rng``: a block's gaps when :meth:`blocks` asks for the next block."""
        self._rng = rng
        self._rate = rate
        self._start = bounds.start
        self._end = math.inf if bounds.duration_s is None else bounds.duration_s
        self._limit = math.inf if bounds.count is None else bounds.count
        self.t = 0.0
        """Seconds from the start to the current event."""
        self.emitted = 0
        """Events so far, the current one included (its 1-based number)."""
        self._done = False

    def blocks(self) -> Iterator[Iterator[int]]:
        """Per block, once its gaps are drawn: the indexes of its events within the bounds.

        Draw the block's other values after getting the block and before iterating it; while an
        index is current, :attr:`t`, :attr:`emitted` and :meth:`event_time` describe its event.
        """
        while not self._done:
            yield self._block(self._rng.exponential(1.0 / self._rate, BLOCK))

    def _block(self, gaps: np.ndarray) -> Iterator[int]:
        for i in range(BLOCK):
            self.t += float(gaps[i])
            if self.t > self._end or self.emitted >= self._limit:
                self._done = True
                return
            self.emitted += 1
            yield i

    def event_time(self) -> datetime:
        """The current event's time, to the microsecond."""
        return self._start + timedelta(microseconds=round(self.t * 1e6))
