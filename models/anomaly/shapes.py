"""Synthetic series with injected anomalies of four shapes, and where each should be found.

A series is one entity's value per step (a minute for the metric views): a level (50-150),
Gaussian noise of ``sigma`` (1-3 % of the level), in half of the series a slow trend, and a
seasonal cycle (a sine of ``season`` steps, amplitude 3-6 sigma) in half of them -- in all of
those that get seasonality breaks. After a quiet start of two seasons, ``per_series`` anomalies
of one shape are injected at random onsets at least :data:`SPACING` steps apart:

========================  ====================================================  ============
shape                     what changes from the onset on                        window
========================  ====================================================  ============
``spike``                 one value, +/- 6-10 sigma                             onset + 1
``level_shift``           every later value, +/- 3-8 sigma                      onset + 10
``trend_change``          a ramp of +/- 0.15-0.4 sigma per step                 onset + 30
``seasonality_break``     the cycle's phase by half a season, or its end        onset + season
========================  ====================================================  ============

The window is where a flag counts as finding that anomaly (a detector needs a few steps to tell
a small shift or a new slope from noise); a flag outside every window is a false alarm.
``none`` series carry no anomaly (false alarms only). Seeded: the same arguments give the same
series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["SHAPES", "SPACING", "Injected", "Series", "Shape", "make_series", "window_of"]

Shape = Literal["spike", "level_shift", "trend_change", "seasonality_break", "none"]
SHAPES: tuple[Shape, ...] = ("spike", "level_shift", "trend_change", "seasonality_break")
SPACING = 150
"""Least steps between two onsets in one series."""


def window_of(shape: Shape, season: int) -> int:
    """Steps after the onset in which a flag still finds the anomaly."""
    return {"spike": 1, "level_shift": 10, "trend_change": 30}.get(shape, season)


@dataclass(frozen=True)
class Injected:
    """One injected anomaly."""

    shape: Shape
    onset: int
    """Index of the first changed value."""
    end: int
    """Last index (inclusive) of its window."""
    size: float
    """Its size in sigmas (spike, shift), sigmas per step (trend), or the phase change in
    seasons (0.5) / -1 for a cycle that ends (seasonality break)."""


@dataclass(frozen=True)
class Series:
    """One entity's values and what was injected into them."""

    values: np.ndarray
    sigma: float
    season: int
    """0 when the series has no seasonal cycle."""
    injected: tuple[Injected, ...]

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Per step: whether it lies in an anomaly's window, and that anomaly's index (-1)."""
        ids = np.full(len(self.values), -1)
        for i, anomaly in enumerate(self.injected):
            ids[anomaly.onset : anomaly.end + 1] = i
        return ids >= 0, ids


def make_series(
    rng: np.random.Generator,
    shape: Shape,
    *,
    steps: int = 720,
    season: int = 60,
    per_series: int = 3,
) -> Series:
    """One series of ``steps`` values with ``per_series`` anomalies of ``shape``."""
    level = rng.uniform(50, 150)
    sigma = level * rng.uniform(0.01, 0.03)
    t = np.arange(steps, dtype="float64")
    seasonal = shape == "seasonality_break" or rng.random() < 0.5
    period = season if seasonal else 0
    amplitude = rng.uniform(3, 6) * sigma if seasonal else 0.0
    phase = rng.uniform(0, 2 * math.pi)
    cycle_phase = np.full(steps, phase)
    cycle_on = np.ones(steps)
    trend = rng.uniform(-0.02, 0.02) * sigma if rng.random() < 0.5 else 0.0
    values = level + trend * t + rng.normal(0, sigma, steps)
    injected: list[Injected] = []
    if shape != "none":
        first = 2 * max(season, 30)
        onsets = _onsets(rng, first, steps - window_of(shape, season) - 1, per_series)
        for onset in onsets:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            end = min(steps - 1, onset + window_of(shape, season))
            if shape == "spike":
                size = rng.uniform(6, 10)
                values[onset] += sign * size * sigma
            elif shape == "level_shift":
                size = rng.uniform(3, 8)
                values[onset:] += sign * size * sigma
            elif shape == "trend_change":
                size = rng.uniform(0.15, 0.4)
                values[onset:] += sign * size * sigma * (t[onset:] - onset + 1)
            else:
                ends = rng.random() < 0.3 and cycle_on[onset] > 0
                size = -1.0 if ends else 0.5
                if ends:
                    cycle_on[onset:] = 0.0
                else:
                    cycle_phase[onset:] += math.pi
            injected.append(Injected(shape, onset, end, float(size)))
    if period:
        values += cycle_on * amplitude * np.sin(2 * math.pi * t / period + cycle_phase)
    return Series(values, float(sigma), period, tuple(injected))


def _onsets(rng: np.random.Generator, first: int, last: int, count: int) -> list[int]:
    """``count`` onsets in ``[first, last]``, at least :data:`SPACING` apart."""
    room = last - first - (count - 1) * SPACING
    if room < 0:
        raise ValueError(f"{count} anomalies do not fit between steps {first} and {last}")
    gaps = np.sort(rng.integers(0, room + 1, count))
    return [first + int(g) + i * SPACING for i, g in enumerate(gaps)]
