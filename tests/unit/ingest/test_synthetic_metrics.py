from __future__ import annotations

import collections
import itertools
import statistics
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from featurestore.errors import ConfigurationError
from featurestore.events.model import Metric
from featurestore.ingest import MetricStream
from featurestore.ingest import MetricStreamConfig
from featurestore.ingest import validate_metric

START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def metrics(**kwargs: object) -> list[Metric]:
    config = MetricStreamConfig(start=START, **kwargs)  # type: ignore[arg-type]
    return [validate_metric(r) for r in MetricStream(config)]


def test_same_seed_same_stream() -> None:
    assert metrics(seed=3, count=3000) == metrics(seed=3, count=3000)
    assert metrics(seed=3, count=200) != metrics(seed=4, count=200)


def test_bounded_by_count_and_by_duration() -> None:
    assert len(metrics(count=777)) == 777
    by_time = metrics(rate=500.0, duration_s=4.0)
    assert 1500 < len(by_time) < 2500
    assert by_time[-1].event_time <= START + timedelta(seconds=4)


def spikes(stream: list[Metric], entity: str) -> tuple[int, int]:
    """Jumps out and straight back, far beyond the walk's own steps; and the observations."""
    one = [m.value for m in stream if m.entity == entity]
    typical = statistics.median(abs(b - a) for a, b in itertools.pairwise(one))
    out_and_back = sum(
        1
        for a, b, c in zip(one, one[1:], one[2:], strict=False)
        if abs(b - a) > 20 * typical and abs(c - b) > 20 * typical
    )
    return out_and_back, len(one)


def test_a_random_walk_per_entity_with_rare_spikes() -> None:
    stream = metrics(seed=5, entities=8, rate=200.0, count=40_000, names=("latency_ms",))
    assert {m.entity for m in stream} == {f"entity-{i:04d}" for i in range(1, 9)}
    assert {m.name for m in stream} == {"latency_ms"}
    times = [m.event_time for m in stream]
    assert times == sorted(times)
    assert len({m.metric_id for m in stream}) == len(stream)
    found, seen = spikes(stream, "entity-0001")
    assert 0.3 * 0.002 * seen <= found <= 2 * 0.002 * seen
    calm = metrics(seed=5, entities=8, rate=200.0, count=40_000, spike_probability=0.0)
    assert spikes(calm, "entity-0001")[0] == 0


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        MetricStream(MetricStreamConfig(start=START, entities=0))
    with pytest.raises(ConfigurationError):
        MetricStream(MetricStreamConfig(start=datetime(2024, 1, 2)))
    with pytest.raises(ConfigurationError):
        MetricStream(MetricStreamConfig(start=START, spike_probability=2.0))
    with pytest.raises(ConfigurationError, match="non-empty name"):
        MetricStream(MetricStreamConfig(start=START, names=("cpu", " ")))
    with pytest.raises(ConfigurationError, match="a name is given twice"):
        MetricStream(MetricStreamConfig(start=START, names=("cpu", "cpu")))


def test_several_metrics_interleave_each_its_own_walk() -> None:
    one = metrics(seed=5, entities=4, count=3000)
    assert one == metrics(seed=5, entities=4, count=3000, names=("value",))
    stream = metrics(seed=5, entities=4, rate=200.0, count=30_000, names=("cpu", "mem", "io"))
    counts = collections.Counter(m.name for m in stream)
    assert set(counts) == {"cpu", "mem", "io"} and min(counts.values()) > 9_000
    for name in ("cpu", "mem"):  # a metric's own walk: its steps stay small
        found, seen = spikes([m for m in stream if m.name == name], "entity-0001")
        assert seen > 2_000 and found <= 2 * 0.002 * seen

    def median_step(values: list[float]) -> float:
        return statistics.median(abs(b - a) for a, b in itertools.pairwise(values))

    own = [m.value for m in stream if m.entity == "entity-0001" and m.name == "cpu"]
    mixed = [m.value for m in stream if m.entity == "entity-0001"]
    assert median_step(mixed) > 5 * median_step(own)  # three walks at their own levels
