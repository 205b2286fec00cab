from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from featurestore.errors import ConfigurationError
from featurestore.events.model import Trade
from featurestore.ingest import MarketConfig
from featurestore.ingest import SyntheticMarket
from featurestore.ingest import validate_trade

START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def trades(**kwargs: object) -> list[Trade]:
    return [validate_trade(r) for r in SyntheticMarket(MarketConfig(start=START, **kwargs))]  # type: ignore[arg-type]


def test_same_seed_same_stream() -> None:
    assert trades(seed=3, count=5000) == trades(seed=3, count=5000)


def test_other_seed_other_stream() -> None:
    assert trades(seed=3, count=200) != trades(seed=4, count=200)


def test_bounded_by_count_and_by_duration() -> None:
    assert len(trades(seed=1, count=777)) == 777
    by_time = trades(seed=1, rate=500.0, duration_s=4.0)
    assert 1500 < len(by_time) < 2500
    assert by_time[-1].event_time <= START + timedelta(seconds=4)


def test_looks_like_a_market() -> None:
    stream = trades(seed=11, symbols=20, rate=2000.0, count=20000)
    assert len({t.symbol for t in stream}) == 20
    times = [t.event_time for t in stream]
    assert times == sorted(times)
    assert all(t.price > 0 and t.size >= 1 for t in stream)
    round_lots = sum(t.size % 100 == 0 for t in stream) / len(stream)
    assert 0.6 < round_lots < 0.9
    # Popularity is skewed: the busiest symbol trades far more than the quietest.
    counts = sorted(sum(t.symbol == s for t in stream) for s in {t.symbol for t in stream})
    assert counts[-1] > 3 * counts[0]
    # Prices move but stay in a sane range over a few seconds.
    first: dict[str, float] = {}
    for t in stream:
        first.setdefault(t.symbol, t.price)
        assert 0.5 * first[t.symbol] < t.price < 2 * first[t.symbol]


def test_unbounded_market_is_a_live_feed() -> None:
    trades = iter(SyntheticMarket(MarketConfig(start=START)))
    first = [next(trades) for _ in range(5_000)]
    assert len(first) == 5_000, "without count or duration the market keeps going"


def test_naive_config_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        SyntheticMarket(MarketConfig(start=datetime(2024, 1, 2), count=1))
