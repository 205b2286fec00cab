"""Rolling features of a closed minute, from the symbol's last closed bars.

Windows count bars, not clock minutes: a minute without trades is not a bar (nothing is
invented for it), so ``vwap_5m`` is the VWAP of the last 5 bars that traded. A feature whose
window is not full yet is null (NaN here, null in the stores), never a partial value:

==================  =====================================================  ===========
feature             definition (bar k is the minute that just closed)      bars needed
==================  =====================================================  ===========
vwap_5m, vwap_15m   sum(price*size) / sum(size) over the last 5 / 15 bars  5 / 15
realized_vol_5m     sample std (ddof=1) of the last 5 1-bar log returns    6
realized_vol_15m    of close, ln(close_i / close_i-1); 15 returns          16
price_momentum_1m   (close_k - open_k) / open_k                            1
price_momentum_5m   (close_k - open_k-4) / open_k-4                        5
volume_5m           sum of volume over the last 5 bars                     5
volume_ratio        volume_k / mean volume of the last 20 bars (k incl.)   20
sma_5, sma_20       mean close over the last 5 / 20 bars                   5 / 20
==================  =====================================================  ===========

A VWAP or ratio whose denominator is 0 (bars of zero-size trades only) is null too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from processors.core.state import ClosedBar

__all__ = ["ROLLING_FEATURES", "rolling_features"]

ROLLING_FEATURES = (
    "vwap_5m",
    "vwap_15m",
    "realized_vol_5m",
    "realized_vol_15m",
    "price_momentum_1m",
    "price_momentum_5m",
    "volume_5m",
    "volume_ratio",
    "sma_5",
    "sma_20",
)

_NAN = math.nan


def _vwap(bars: Sequence[ClosedBar], n: int) -> float:
    if len(bars) < n:
        return _NAN
    window = bars[-n:]
    volume = math.fsum(b.volume for b in window)
    return math.fsum(b.notional for b in window) / volume if volume > 0 else _NAN


def _vol(bars: Sequence[ClosedBar], returns: int) -> float:
    if len(bars) < returns + 1:
        return _NAN
    closes = [b.close for b in bars[-(returns + 1) :]]
    logs = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    mean = math.fsum(logs) / returns
    return math.sqrt(math.fsum((x - mean) ** 2 for x in logs) / (returns - 1))


def _mean_close(bars: Sequence[ClosedBar], n: int) -> float:
    return math.fsum(b.close for b in bars[-n:]) / n if len(bars) >= n else _NAN


def rolling_features(bars: Sequence[ClosedBar]) -> tuple[float, ...]:
    """The features of :data:`ROLLING_FEATURES`, in order, for the last bar of ``bars``.

    Sums use :func:`math.fsum` (exactly rounded), so the result depends only on the values,
    never on the order of additions.
    """
    last = bars[-1]
    momentum_5m = _NAN
    if len(bars) >= 5:
        first_open = bars[-5].open
        momentum_5m = (last.close - first_open) / first_open
    volume_5m = math.fsum(b.volume for b in bars[-5:]) if len(bars) >= 5 else _NAN
    volume_ratio = _NAN
    if len(bars) >= 20:
        mean_volume = math.fsum(b.volume for b in bars[-20:]) / 20
        volume_ratio = last.volume / mean_volume if mean_volume > 0 else _NAN
    return (
        _vwap(bars, 5),
        _vwap(bars, 15),
        _vol(bars, 5),
        _vol(bars, 15),
        (last.close - last.open) / last.open,
        momentum_5m,
        volume_5m,
        volume_ratio,
        _mean_close(bars, 5),
        _mean_close(bars, 20),
    )
