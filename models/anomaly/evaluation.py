"""Precision and recall of the streaming detector per injected shape (:mod:`.shapes`).

Each shape gets its own series (``series`` of them, each with ``per_series`` anomalies); the
detector scores every series from a fresh state, value by value, as the scorer does. Per shape:
precision is the share of flagged steps that lie in an injected anomaly's window, recall the
share of anomalies with a flagged step in their window (``event_recall`` of
:func:`models.training.metrics.event_precision_recall`), and the delay the steps from an onset to
its first flag. ``none`` series measure false alarms per 1,000 scored steps on clean data.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.anomaly.detector import DetectorParams
from models.anomaly.detector import SeriesState
from models.anomaly.detector import StreamingDetector
from models.anomaly.shapes import SHAPES
from models.anomaly.shapes import Series
from models.anomaly.shapes import Shape
from models.anomaly.shapes import make_series
from models.training.metrics import event_precision_recall

__all__ = ["ShapeResult", "evaluate_shapes", "flags_of", "results_markdown"]


@dataclass(frozen=True)
class ShapeResult:
    """How the detector did on one shape's series."""

    shape: Shape
    series: int
    anomalies: int
    flagged: int
    precision: float
    recall: float
    median_delay: float
    """Steps from onset to first flag, over the anomalies found (NaN when none)."""
    false_alarms_per_1k: float
    """Flags outside every window per 1,000 scored steps."""


def flags_of(params: DetectorParams, series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Per step of one series: whether it was flagged and whether it was scored (warm)."""
    detector = StreamingDetector(params)
    state = SeriesState()
    flagged = np.zeros(len(series.values), dtype=bool)
    scored = np.zeros(len(series.values), dtype=bool)
    for i, value in enumerate(series.values):
        warm = not state.warming
        result = detector.update(state, i, float(value))
        if result is not None:
            flagged[i] = result.flagged
            scored[i] = warm
    return flagged, scored


def evaluate_shapes(
    params: DetectorParams,
    *,
    shapes: Sequence[Shape] = (*SHAPES, "none"),
    series: int = 40,
    steps: int = 720,
    per_series: int = 3,
    seed: int = 0,
    season: int | None = None,
    flagger: Callable[[Series], tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[ShapeResult]:
    """Score ``series`` seeded series per shape and measure precision and recall.

    ``season``: the seasonal series' cycle (default: the detector's, else 60). ``flagger``
    replaces the detector (a baseline to compare with): per step, flagged and scored.
    """
    cycle = season or params.season or 60
    flag = flagger or (lambda one: flags_of(params, one))
    results = []
    for k, shape in enumerate(shapes):
        rng = np.random.default_rng([seed, k])
        flags, in_event, ids, scored, delays = [], [], [], 0, []
        offset = 0
        for _ in range(series):
            one = make_series(rng, shape, steps=steps, season=cycle, per_series=per_series)
            flagged, warm = flag(one)
            inside, which = one.labels()
            flags.append(flagged)
            in_event.append(inside)
            ids.append(np.where(which >= 0, which + offset, -1))
            offset += len(one.injected)
            scored += int(warm.sum())
            for anomaly in one.injected:
                hits = np.flatnonzero(flagged[anomaly.onset : anomaly.end + 1])
                if hits.size:
                    delays.append(int(hits[0]))
        flagged_all, inside_all = np.concatenate(flags), np.concatenate(in_event)
        metrics = event_precision_recall(flagged_all, inside_all, np.concatenate(ids))
        false_alarms = int((flagged_all & ~inside_all).sum())
        results.append(
            ShapeResult(
                shape=shape,
                series=series,
                anomalies=offset,
                flagged=int(flagged_all.sum()),
                precision=metrics["precision"],
                recall=metrics["event_recall"] if offset else float("nan"),
                median_delay=float(np.median(delays)) if delays else float("nan"),
                false_alarms_per_1k=1000.0 * false_alarms / max(scored, 1),
            )
        )
    return results


def results_markdown(results: Sequence[ShapeResult]) -> str:
    """The results as a Markdown table, a row per shape."""
    lines = [
        "| shape | series | anomalies | flagged steps | precision | recall | median delay (steps)"
        " | false alarms / 1k steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        recall = "-" if r.anomalies == 0 else f"{r.recall:.2f}"
        precision = "-" if r.anomalies == 0 else f"{r.precision:.2f}"
        delay = "-" if np.isnan(r.median_delay) else f"{r.median_delay:g}"
        lines.append(
            f"| {r.shape} | {r.series} | {r.anomalies} | {r.flagged} | {precision} | {recall}"
            f" | {delay} | {r.false_alarms_per_1k:.2f} |"
        )
    return "\n".join(lines)
