"""A streaming anomaly detector for one numeric series per entity; it needs no labels.

Why this detector (and not an isolation forest over windows, or a plain z-score): it runs on the
stream one value at a time, in constant memory per entity, so the scorer keeps a state per entity
and scores each new row as it is stored; it is robust, so the anomalies it finds do not teach it
that they are normal; and each of the four shapes it is evaluated on has a part of it that sees
that shape:

* **forecast**: additive Holt-Winters (level, trend, and a seasonal profile when the view's
  series are seasonal), updated with the residual clipped at ``clip`` scales (Huber), so a spike
  moves the state by at most ``alpha * clip`` scales;
* **scale**: an exponentially weighted mean of the clipped absolute residuals (times
  sqrt(pi/2), the standard deviation for Gaussian noise), one per entity, so scores are in the
  entity's own units of noise whatever its level;
* **point test**: ``|z|``, the residual in scales -- spikes, and the first steps of large shifts;
* **persistence test**: a two-sided CUSUM of the clipped z-scores with drift ``cusum_drift``
  -- level shifts, trend changes and seasonality breaks too small for the point test add up
  here. When it reaches ``cusum_limit`` the change is confirmed and the state is re-anchored on
  the residuals of the run that confirmed it (level by their median, trend by their slope when
  it is significant, the seasonal slots they visited by what is left), so the new regime becomes
  normal instead of being flagged for as long as the smoothing takes to forget the old one;
* **broken cycle** (seasonal views): a challenger seasonal profile learns fast from every
  residual; when a tenth of a season's steps have been flagged, it replaces the profile.

The score of a step is ``max(|z|, threshold * cusum / cusum_limit)``: a step is flagged when its
score reaches ``threshold``, that is when either test fires. Steps are counted in the view's
rows (``step_s``, the view's tile) from the epoch, so a seasonal phase does not depend on where a
state started; a gap of more than ``max_gap`` steps starts the entity again (a new warm-up).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from featurestore.errors import ValidationError

__all__ = ["DetectorParams", "SeriesState", "StepResult", "StreamingDetector"]

_GAUSS_MEAN_ABS = math.sqrt(math.pi / 2)
"""sigma / E|x| for a centred Gaussian: turns a mean absolute residual into a scale."""
_RUN_MAX = 64
"""Values of a CUSUM run that are kept to re-anchor on (a longer run keeps its last ones)."""
_FAST = 0.7
"""Rate at which the challenger seasonal profile takes each residual."""
_BROKEN_SHARE = 10
"""A season with at least 1/10 of its steps flagged (and 3 or more) has a broken pattern."""
_HINGE_MIN = 10
"""Least values after a change point for a ramp to be fitted (fewer: a step)."""
_HINGE_T = 4.0
"""Least t-statistic of a ramp's slope (every change point is tried, so more than 3)."""


@dataclass(frozen=True)
class DetectorParams:
    """The detector's parameters: what a view's registered anomaly model holds."""

    step_s: float = 60.0
    """Seconds between two consecutive rows of an entity (the view's tile)."""
    season: int = 0
    """Length of the seasonal cycle in steps; 0: not seasonal."""
    alpha: float = 0.1
    """Level smoothing."""
    beta: float = 0.01
    """Trend smoothing."""
    gamma: float = 0.1
    """Seasonal smoothing."""
    scale_rate: float = 0.02
    """Weight of a new absolute residual in the scale."""
    clip: float = 3.0
    """Residuals are clipped at this many scales before they update the state or the CUSUM."""
    cusum_drift: float = 1.0
    """Allowance per step (in scales): shifts smaller than about twice this are not confirmed."""
    cusum_limit: float = 5.0
    """CUSUM value that confirms a persistent change."""
    threshold: float = 5.0
    """Score at or above which a step is flagged."""
    warmup: int = 30
    """Values an entity needs before it is scored (at least two seasons when seasonal)."""
    max_gap: int = 60
    """A gap of more steps than this starts the entity's state again."""

    def __post_init__(self) -> None:
        """Refuse a parameter out of range, naming it (ValidationError).

        Checked when the parameters are made, so a bad fit or a bad registered configuration
        fails when it is built or loaded rather than as NaN scores at the first rows.
        """
        checks = {
            "step_s": self.step_s > 0,
            "season": self.season >= 0 and self.season != 1,
            "alpha": 0 < self.alpha <= 1,
            "beta": 0 <= self.beta <= 1,
            "gamma": 0 <= self.gamma <= 1,
            "scale_rate": 0 < self.scale_rate <= 1,
            "clip": self.clip > 0,
            "cusum_drift": self.cusum_drift >= 0,
            "cusum_limit": self.cusum_limit > 0,
            "threshold": self.threshold > 0,
            "warmup": self.warmup >= 3,
            "max_gap": self.max_gap >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValidationError(
                    f"detector parameter {name}={getattr(self, name)!r} is out of range",
                    field=name,
                )

    @property
    def warmup_steps(self) -> int:
        """Values needed before scoring: ``warmup``, and two full seasons when seasonal."""
        return max(self.warmup, 2 * self.season)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON-ready values (the registered model's artifact)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorParams:
        """Parameters read back from :meth:`to_dict`; unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(f"unknown detector parameters {unknown}", field=unknown[0])
        return cls(**data)


@dataclass(frozen=True)
class StepResult:
    """What the detector made of one value."""

    score: float
    """``max(|z|, threshold * cusum / cusum_limit)``; 0 while warming up."""
    z: float
    """The residual in scales (0 while warming up)."""
    flagged: bool
    confirmed: bool
    """A persistent change was confirmed at this step (the state was re-anchored)."""
    expected: float
    """The forecast the value was compared with (the value itself while warming up)."""


@dataclass
class _Anchor:
    """The state just before a CUSUM run: what a confirmed change is measured against."""

    step: int
    level: float
    trend: float
    seasonal: list[float]
    scale: float


@dataclass
class SeriesState:
    """One entity's state: what the detector remembers between two of its values."""

    last_step: int | None = None
    warm: list[tuple[int, float]] = field(default_factory=list)
    """Values buffered until the warm-up is over (then empty)."""
    level: float = 0.0
    """The level at :attr:`last_step`."""
    trend: float = 0.0
    seasonal: list[float] = field(default_factory=list)
    scale: float = 0.0
    cusum_up: float = 0.0
    cusum_down: float = 0.0
    anchor: _Anchor | None = None
    """The state before the current CUSUM run (None when the CUSUM is at 0)."""
    run: list[tuple[int, float]] = field(default_factory=list)
    """(step, value) since the CUSUM last left 0 (its last :data:`_RUN_MAX`)."""
    fast: list[float] = field(default_factory=list)
    """A challenger seasonal profile that learns fast (seasonal views)."""
    flags: list[int] = field(default_factory=list)
    """Steps flagged within the last season (seasonal views)."""

    @property
    def warming(self) -> bool:
        """Whether the entity is still being warmed up (not scored yet)."""
        return self.scale <= 0.0


class StreamingDetector:
    """Scores each entity's values in time order with one :class:`SeriesState` per entity."""

    def __init__(self, params: DetectorParams) -> None:
        """``params``: checked already (:class:`DetectorParams`), shared by every entity."""
        self.params = params

    def step_of(self, epoch_seconds: float) -> int:
        """The step index of a time (steps of ``step_s`` since the epoch)."""
        return math.floor(epoch_seconds / self.params.step_s + 1e-9)

    def update(self, state: SeriesState, step: int, value: float) -> StepResult | None:
        """Feed one value; ``None`` when it is not newer than the entity's last (ignored).

        A NaN or infinite value is ignored the same way (``None``): there is nothing to score.
        """
        if not math.isfinite(value) or (state.last_step is not None and step <= state.last_step):
            return None
        p = self.params
        if state.last_step is not None and step - state.last_step > p.max_gap:
            self._reset(state)
        previous = state.last_step
        state.last_step = step
        if state.warming:
            state.warm.append((step, value))
            if len(state.warm) >= p.warmup_steps:
                self._initialise(state)
            return StepResult(0.0, 0.0, False, False, value)
        assert previous is not None
        return self._score(state, previous, step, value)

    def _phase(self, step: int) -> int:
        return step % self.params.season if self.params.season else 0

    def _seasonal(self, seasonal: list[float], step: int) -> float:
        return seasonal[self._phase(step)] if self.params.season else 0.0

    def _reset(self, state: SeriesState) -> None:
        fresh = SeriesState()
        for name in fresh.__dataclass_fields__:
            setattr(state, name, getattr(fresh, name))

    def _initialise(self, state: SeriesState) -> None:
        """Level, trend, seasonal profile and scale from the warm-up values (least squares)."""
        p = self.params
        steps = [float(s - state.warm[-1][0]) for s, _ in state.warm]
        values = [v for _, v in state.warm]
        intercept, slope = _line(steps, values)
        detrended = [y - intercept - slope * x for x, y in zip(steps, values, strict=True)]
        seasonal = [0.0] * p.season
        fitted = 2.0  # parameters fitted: the line, and the seasonal profile's free values
        if p.season:
            by_phase: list[list[float]] = [[] for _ in range(p.season)]
            for (step, _), d in zip(state.warm, detrended, strict=True):
                by_phase[self._phase(step)].append(d)
            # Neighbouring phases pooled (a seasonal profile is smooth at the step's scale):
            # two seasons give 2 values a phase, too few to tell the profile from the noise.
            half = p.season // 24
            means = []
            for phase in range(p.season):
                pooled = [
                    d for k in range(-half, half + 1) for d in by_phase[(phase + k) % p.season]
                ]
                means.append(statistics.fmean(pooled) if pooled else 0.0)
            centre = statistics.fmean(means)
            seasonal = [m - centre for m in means]
            fitted += p.season / (2 * half + 1)
        residuals = [
            d - self._seasonal(seasonal, s) for (s, _), d in zip(state.warm, detrended, strict=True)
        ]
        # The MAD of fitted residuals understates the noise by the parameters fitted.
        freedom = max(1.0 - fitted / len(residuals), 0.25)
        deviation = statistics.median(abs(r) for r in residuals) * 1.4826 / math.sqrt(freedom)
        spread = statistics.pstdev(values) or abs(statistics.fmean(values)) or 1.0
        state.level = intercept  # the fitted line at the last warm-up step (x = 0)
        state.trend = slope
        state.seasonal = seasonal
        state.fast = list(seasonal)
        state.scale = max(deviation, 1e-9 * spread, 1e-12)
        state.warm = []

    def _score(self, state: SeriesState, previous: int, step: int, value: float) -> StepResult:
        p = self.params
        base = state.level + state.trend * (step - previous)
        expected = base + self._seasonal(state.seasonal, step)
        residual = value - expected
        z = residual / state.scale
        clipped = max(-p.clip, min(p.clip, z))
        if state.anchor is None:
            state.anchor = _Anchor(
                previous, state.level, state.trend, list(state.seasonal), state.scale
            )
            state.run = []
        state.cusum_up = max(0.0, state.cusum_up + clipped - p.cusum_drift)
        state.cusum_down = max(0.0, state.cusum_down - clipped - p.cusum_drift)
        cusum = max(state.cusum_up, state.cusum_down)
        state.run.append((step, value))
        del state.run[:-_RUN_MAX]
        score = max(abs(z), p.threshold * cusum / p.cusum_limit)
        confirmed = cusum >= p.cusum_limit
        if p.season:
            phase = self._phase(step)
            state.fast[phase] += _FAST * (value - base - state.fast[phase])
            if score >= p.threshold and self._pattern_broke(state, step):
                return StepResult(score, z, True, True, expected)
        if confirmed:
            self._reanchor(state, step)
        else:
            self._smooth(state, step, base, residual, abs(z) <= p.clip)
            if cusum == 0.0:
                state.anchor = None
        return StepResult(score, z, score >= p.threshold, confirmed, expected)

    def _pattern_broke(self, state: SeriesState, step: int) -> bool:
        """After many flags within a season, adopt the challenger profile; returns whether it did.

        A broken seasonal pattern keeps the old profile failing all through the next season
        (each phase is new when first visited, which no model can foresee), while the
        challenger, which takes most of each residual, learns each phase as it is visited. A
        spike or a level shift flags a few steps only (:data:`_BROKEN_SHARE`).
        """
        p = self.params
        state.flags = [s for s in state.flags if s > step - p.season]
        state.flags.append(step)
        if len(state.flags) < max(3, p.season // _BROKEN_SHARE):
            return False
        centre = statistics.fmean(state.fast)
        state.level += centre
        state.seasonal = [f - centre for f in state.fast]
        state.fast = list(state.seasonal)
        state.flags = []
        state.cusum_up = state.cusum_down = 0.0
        state.anchor = None
        state.run = []
        return True

    def _smooth(
        self, state: SeriesState, step: int, base: float, residual: float, inlier: bool
    ) -> None:
        """Holt-Winters error correction with the clipped residual; inliers update the scale."""
        p = self.params
        limit = p.clip * state.scale
        error = max(-limit, min(limit, residual))
        state.level = base + p.alpha * error
        state.trend += p.alpha * p.beta * error
        if p.season:
            state.seasonal[self._phase(step)] += p.gamma * (1 - p.alpha) * error
        if inlier:
            state.scale += p.scale_rate * (_GAUSS_MEAN_ABS * abs(error) - state.scale)

    def _reanchor(self, state: SeriesState, step: int) -> None:
        """Make the confirmed change the new normal, measured against the state before its run.

        The run's values are compared with what the state before the run forecast for them;
        those residuals are fitted by a step (0, then a constant from some change point on) and
        by a hinge (0, then a ramp from some change point on), whichever fits better (the ramp
        only when its slope is significant). A step moves the level, a ramp the level and the
        trend. In a seasonal view, a change that neither explains (what remains is larger than
        1.5 scales) is a seasonal break: the residuals replace the seasonal slots they visited,
        so the new pattern is learned as it is visited. The scale is the one before the run:
        the run was the change, not the noise.
        """
        p = self.params
        anchor = state.anchor
        assert anchor is not None
        xs = [float(s - anchor.step) for s, _ in state.run]
        ys = [
            v - anchor.level - anchor.trend * x - self._seasonal(anchor.seasonal, s)
            for (s, v), x in zip(state.run, xs, strict=True)
        ]
        change = _fit_change(xs, ys, anchor.scale)
        state.scale = anchor.scale
        state.seasonal = anchor.seasonal
        state.level = anchor.level + anchor.trend * (step - anchor.step)
        state.trend = anchor.trend
        if p.season and change.remainder > 1.5 * anchor.scale:
            # Neither a step nor a ramp: the seasonal pattern broke; learn it as visited.
            for (s, _), y in list(zip(state.run, ys, strict=True))[change.at :]:
                state.seasonal[self._phase(s)] += y
        else:
            state.level += change.now
            state.trend += change.slope
        state.cusum_up = state.cusum_down = 0.0
        state.anchor = None
        state.run = []


@dataclass(frozen=True)
class _Change:
    at: int
    """Index in the run of the first changed value."""
    now: float
    """The change at the run's last step."""
    slope: float
    """Per step (0 for a step change)."""
    remainder: float
    """Root mean square of what the fit leaves, from ``at`` on."""


def _fit_change(xs: list[float], ys: list[float], scale: float) -> _Change:
    """The better of a step and a significant hinge fitted to ``ys`` (0 before the change)."""
    best: _Change | None = None
    best_sse = math.inf
    n = len(ys)
    for at in range(n):
        tail_x, tail_y = xs[at:], ys[at:]
        before = sum(y * y for y in ys[:at])
        mean = statistics.fmean(tail_y)
        sse = before + sum((y - mean) ** 2 for y in tail_y)
        if sse < best_sse:
            best_sse, best = sse, _Change(at, mean, 0.0, math.sqrt((sse - before) / len(tail_y)))
        if len(tail_y) >= _HINGE_MIN:
            origin = xs[at] - 1.0
            dx = [x - origin for x in tail_x]
            sxx = sum(d * d for d in dx)
            slope = sum(d * y for d, y in zip(dx, tail_y, strict=True)) / sxx
            sse = before + sum((y - slope * d) ** 2 for d, y in zip(dx, tail_y, strict=True))
            if sse < best_sse and abs(slope) * math.sqrt(sxx) >= _HINGE_T * scale:
                remainder = math.sqrt((sse - before) / len(tail_y))
                best_sse, best = sse, _Change(at, slope * dx[-1], slope, remainder)
    assert best is not None
    return best


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares intercept (at x = 0) and slope."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return mean_y - slope * mean_x, slope
