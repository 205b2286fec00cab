"""A synthetic metric stream: many entities, each a random walk with rare spikes; seeded.

Model, per entity: a Gaussian random walk starting at a level drawn from 50-150, with its own
volatility ``sigma`` (1-5 % of the starting level per square root of a minute), so a value
moves by about ``sigma * sqrt(dt / 60 s)`` between two observations ``dt`` apart. With
probability ``spike_probability`` an observation is a spike: it reads ``spike_size * sigma *
(1 + Exp(1))`` above or below the walk; the walk itself does not move (a spike is a glitch, not
a level shift). Observations arrive as one Poisson process of ``rate`` per second of event time,
each for an entity drawn uniformly.

Given the same :class:`MetricStreamConfig` (seed and start included), the stream is identical:
every random draw comes from one ``numpy`` generator, in fixed-size blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from featurestore.errors import ConfigurationError
from featurestore.ingest.sources.arrivals import BLOCK
from featurestore.ingest.sources.arrivals import Arrivals
from featurestore.ingest.sources.arrivals import GeneratorBounds
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord

__all__ = ["MetricStream", "MetricStreamConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricStreamConfig(GeneratorBounds):
    """Parameters of a synthetic metric stream (an event is an observation)."""

    entities: int = 10
    """Number of entities, named ``entity-0001``, ``entity-0002``, ..."""
    rate: float = 100.0
    """Mean observations per second of event time, over all entities."""
    name: str = "value"
    """The metric's name on every observation."""
    spike_probability: float = 0.002
    """Chance that an observation is a spike."""
    spike_size: float = 10.0
    """Least size of a spike, in the entity's one-minute standard deviations."""

    def check(self) -> None:
        """Raise ConfigurationError when the parameters cannot describe a stream."""
        self.check_start("synthetic metrics")
        if self.entities < 1 or self.rate <= 0:
            raise ConfigurationError("synthetic metrics: needs >= 1 entity and a rate > 0")
        if not 0 <= self.spike_probability <= 1:
            raise ConfigurationError("synthetic metrics: spike_probability must be in [0, 1]")


class MetricStream:
    """An iterable of synthetic metric observations (source records, validated as any other)."""

    kind: RecordKind = "metric"

    def __init__(self, config: MetricStreamConfig) -> None:
        """Set up the entities and their parameters from the seed."""
        config.check()
        self.config = config
        self.name = f"synthetic-metrics-seed{config.seed}"
        rng = np.random.default_rng([config.seed, 2])
        n = config.entities
        self.entities = [f"entity-{i:04d}" for i in range(1, n + 1)]
        self._level0 = rng.uniform(50.0, 150.0, n)
        self._sigma = self._level0 * rng.uniform(0.01, 0.05, n)

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield observations until the count or the duration is reached (forever without)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 3])
        n = len(self.entities)
        levels = self._level0.copy()
        last_t = np.zeros(n)
        arrivals = Arrivals(rng, cfg.rate, cfg)
        for block in arrivals.blocks():
            who = rng.integers(0, n, BLOCK)
            shocks = rng.standard_normal(BLOCK)
            spiky = rng.random(BLOCK) < cfg.spike_probability
            spikes = (
                np.where(rng.random(BLOCK) < 0.5, -1.0, 1.0)
                * cfg.spike_size
                * (1.0 + rng.exponential(1.0, BLOCK))
            )
            for i in block:
                t = arrivals.t
                e = int(who[i])
                sigma = float(self._sigma[e])
                levels[e] += sigma * math.sqrt((t - last_t[e]) / 60.0) * float(shocks[i])
                last_t[e] = t
                value = float(levels[e])
                if spiky[i]:
                    value += float(spikes[i]) * sigma
                yield SourceRecord(
                    self.name,
                    arrivals.emitted,
                    {
                        "entity": self.entities[e],
                        "event_time": arrivals.event_time(),
                        "value": value,
                        "name": cfg.name,
                        "tags": {},
                        "metric_id": f"{self.name}:{arrivals.emitted}",
                    },
                    kind=self.kind,
                )
