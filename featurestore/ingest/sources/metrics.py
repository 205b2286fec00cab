"""A synthetic metric stream: many entities, each a random walk with rare spikes; seeded.

Model, per entity and metric: a Gaussian random walk starting at a level drawn from 50-150,
with its own volatility ``sigma`` (1-5 % of the starting level per square root of a minute), so
a value moves by about ``sigma * sqrt(dt / 60 s)`` between two observations ``dt`` apart. With
probability ``spike_probability`` an observation is a spike: it reads ``spike_size * sigma *
(1 + Exp(1))`` above or below the walk; the walk itself does not move (a spike is a glitch, not
a level shift). Observations arrive as one Poisson process of ``rate`` per second of event time,
each for an entity drawn uniformly, and of one of its ``names`` drawn uniformly (several names:
the interleaved metrics of hosts, which a view reads one at a time with ``when(name == ...)``).

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
    names: tuple[str, ...] = ("value",)
    """The metrics every entity reports; each observation is of one of them."""
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
        if not self.names or not all(n.strip() for n in self.names):
            raise ConfigurationError("synthetic metrics: every metric needs a non-empty name")
        if len(set(self.names)) != len(self.names):
            raise ConfigurationError(f"synthetic metrics: a name is given twice in {self.names}")


class MetricStream:
    """An iterable of synthetic metric observations (source records, validated as any other)."""

    kind: RecordKind = "metric"

    def __init__(self, config: MetricStreamConfig) -> None:
        """Set up the entities and their parameters from the seed."""
        config.check()
        self.config = config
        self.name = f"synthetic-metrics-seed{config.seed}"
        rng = np.random.default_rng([config.seed, 2])
        n, k = config.entities, len(config.names)
        self.entities = [f"entity-{i:04d}" for i in range(1, n + 1)]
        # One walk per (metric, entity); with one metric the draws are those of one per entity.
        self._level0 = rng.uniform(50.0, 150.0, (k, n))
        self._sigma = self._level0 * rng.uniform(0.01, 0.05, (k, n))

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield observations until the count or the duration is reached (forever without)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 3])
        n, k = len(self.entities), len(cfg.names)
        levels = self._level0.copy()
        last_t = np.zeros((k, n))
        arrivals = Arrivals(rng, cfg.rate, cfg)
        for block in arrivals.blocks():
            who = rng.integers(0, n, BLOCK)
            # Drawn only for several metrics: one metric's stream stays what it was.
            which = rng.integers(0, k, BLOCK) if k > 1 else np.zeros(BLOCK, np.int64)
            shocks = rng.standard_normal(BLOCK)
            spiky = rng.random(BLOCK) < cfg.spike_probability
            spikes = (
                np.where(rng.random(BLOCK) < 0.5, -1.0, 1.0)
                * cfg.spike_size
                * (1.0 + rng.exponential(1.0, BLOCK))
            )
            for i in block:
                t = arrivals.t
                e, m = int(who[i]), int(which[i])
                sigma = float(self._sigma[m, e])
                levels[m, e] += sigma * math.sqrt((t - last_t[m, e]) / 60.0) * float(shocks[i])
                last_t[m, e] = t
                value = float(levels[m, e])
                if spiky[i]:
                    value += float(spikes[i]) * sigma
                yield SourceRecord(
                    self.name,
                    arrivals.emitted,
                    {
                        "entity": self.entities[e],
                        "event_time": arrivals.event_time(),
                        "value": value,
                        "name": cfg.names[m],
                        "tags": {},
                        "metric_id": f"{self.name}:{arrivals.emitted}",
                    },
                    kind=self.kind,
                )
