"""State memory: the processor's step for hours of event time, its Python blocks beside its state.

The soak (:mod:`bench.bench_soak`) runs the processor for ten minutes, and the views reach
further back than that: ``ohlcv_1h`` keeps two hours of tiles (a row at each hour's end reads
the tiles of the hour before it, and names every symbol that traded in the two hours before
it: ``TopicPlan.horizon_us``). So blocks that grow in a soak may be the windows filling or a
leak; only a run past the longest reach tells.

This one runs, in this process and without a server, what the features processor runs per
batch: :func:`processors.step.run_step` (decode with each record's writer schema, every view's
engine, the chained views fed their upstream's rows) on the views of ``registry/`` as the
processor resolves them (:meth:`MaterializedViews.resolve`), with what a commit does to the live
states after each batch (``take_new_events``, ``horizons``; ``to_bytes`` changes nothing and
costs a JSON form of every tile: it is left out). The trades are the feed's synthetic market
(:class:`SyntheticMarket`, validated and Avro-encoded as ingest does), generated batch by
batch in event time as fast as the CPU allows, every symbol in one Kafka
partition (the state is per symbol, so its size does not depend on how the symbols are spread
over partitions). Every ``STATE_MEMORY_SAMPLE_MIN`` (10) event minutes, after a full
collection: the process's allocated Python blocks, its resident memory, and the tiles and open
tiles' events the states hold (:class:`processors.features.StateCounts`, what the status file
reports as ``state_tiles`` and ``state_open_events``). Between the first sample past the longest
reach and the last one, the live objects the collector tracks are counted by type: unlike
allocation sites, those counts are not moved by the state's turnover (a tile freed, another
made), so a type that grows there is what leaks.

With ``STATE_MEMORY_TRACE_MIN`` > 0 (default 0), that many more event minutes run under
``tracemalloc`` and the sites holding more at their end are listed by traceback. Tracing slows
the step some seventyfold here (ten event minutes past the reach: 241 s against 3.5 s), and what
it lists is everything made while it traced and still alive, the tiles that replaced older ones
included: it says where a leak the blocks and types have shown comes from, it does not show one
by itself.

Healthy: blocks and tiles rise while the windows fill, and stay flat once the event time has
passed the longest reach. Blocks that still grow after it, with the tiles flat, are a leak: the
types say what, a traced run where.

Parameters (environment): ``STATE_MEMORY_MINUTES`` (180) of event time, ``STATE_MEMORY_SYMBOLS``
(50), ``STATE_MEMORY_RATE`` (50 trades/s of event time: the least traded symbol still trades
about 14 times a minute, so every symbol has a tile every minute; the tiles do not grow with the
rate, the open events do), ``STATE_MEMORY_BATCH_S`` (10 s of event time per batch: the step
costs mostly per batch, and three hours take about a minute on one core here, after the import).
"""

from __future__ import annotations

import collections
import gc
import math
import os
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import numpy as np
import psutil

from featurestore.config import Settings
from featurestore.definitions import market_definitions
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import Trade
from featurestore.ingest import MarketConfig
from featurestore.ingest import SyntheticMarket
from featurestore.ingest.validate import validate_trade
from processors.decode import EventDecoder
from processors.decode import KafkaRecords
from processors.features import StateCounts
from processors.step import PartitionState
from processors.step import held_by
from processors.step import run_step
from processors.views import MaterializedViews

__all__ = ["Sample", "StateMemoryReport", "measure", "run"]

OWN_STACK = True
"""Needs no server: ``python -m bench`` starts none for it."""

TOPIC = "trades"
START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
_REPO = str(Path(__file__).resolve().parent.parent)
_FRAMES = 10
"""Frames ``tracemalloc`` keeps per allocation."""


@dataclass(frozen=True)
class Sample:
    """The process and the engine's state at one event minute."""

    minute: int
    blocks: int
    """``sys.getallocatedblocks()`` after ``gc.collect()``."""
    rss_mib: float
    held: StateCounts
    wall_s: float
    """Seconds since the run began."""


@dataclass(frozen=True)
class Growth:
    """One allocation site whose memory grew while ``tracemalloc`` traced."""

    size_kib: float
    blocks: int
    where: str
    """The allocating line, and the innermost line of this repository that led to it."""


@dataclass(frozen=True)
class TypeChange:
    """How many live objects of one type the collector tracked at two samples."""

    name: str
    before: int
    after: int


@dataclass
class StateMemoryReport:
    """Samples of one run, and what grew while traced."""

    minutes: int
    symbols: int
    rate: float
    batch_s: float
    reach_min: float
    """The longest reach of the views (``horizon_us`` plus the lateness), in minutes."""
    trades: int = 0
    samples: list[Sample] = field(default_factory=list)
    types: list[TypeChange] = field(default_factory=list)
    """Between the first sample past the reach and the last untraced one."""
    types_between: tuple[int, int] | None = None
    """The event minutes of those two samples."""
    traced_from: int | None = None
    """The event minute tracing began."""
    growth: list[Growth] = field(default_factory=list)


def _reach_min(views: MaterializedViews) -> float:
    reach = max(
        stage.horizon_us + stage.source.lateness_us
        for chain in views.plans.values()
        for stage in chain.stages
    )
    return reach / 60e6


def _batches(
    market: SyntheticMarket, serializer: AvroSerializer[Trade], batch_s: float
) -> Iterator[tuple[int, KafkaRecords]]:
    """The market's trades as one partition's records, ``batch_s`` of event time at a time.

    Yields each batch with the event time (us) it ends at; Kafka time is the event time, as
    ``featurestore ingest`` sets it.
    """
    step_us = int(batch_s * 1e6)
    end = int(START.timestamp() * 1e6) + step_us
    keys: list[bytes] = []
    values: list[bytes] = []
    stamps: list[int] = []
    offset = 0

    def batch() -> KafkaRecords:
        n = len(values)
        return KafkaRecords(
            keys, values, np.zeros(n, np.int64), np.arange(offset, offset + n, dtype=np.int64),
            np.asarray(stamps, np.int64),
        )  # fmt: skip

    for record in market:
        trade = validate_trade(record)
        at = (trade.event_time - START) // timedelta(microseconds=1) + int(START.timestamp() * 1e6)
        while at >= end:
            yield end, batch()
            offset += len(values)
            keys, values, stamps = [], [], []
            end += step_us
        keys.append(trade.symbol.encode())
        values.append(serializer.encode(trade))
        stamps.append(at // 1000)
    yield end, batch()


def _sample(minute: int, states: dict[str, PartitionState], began: float) -> Sample:
    gc.collect()
    return Sample(
        minute=minute,
        blocks=sys.getallocatedblocks(),
        rss_mib=psutil.Process().memory_info().rss / 2**20,
        held=held_by(states),
        wall_s=time.monotonic() - began,
    )


def _object_types() -> collections.Counter[str]:
    """The objects the collector tracks (containers, instances), counted by type."""
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def _type_changes(
    before: collections.Counter[str], after: collections.Counter[str], top: int
) -> list[TypeChange]:
    """The types whose count changed most between two censuses."""
    names = sorted(set(before) | set(after), key=lambda n: (-abs(after[n] - before[n]), n))
    return [TypeChange(n, before[n], after[n]) for n in names[:top] if after[n] != before[n]]


def _growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> list[Growth]:
    """The sites holding more at ``after`` than at ``before``, by traceback, largest first."""
    sites = []
    for stat in after.compare_to(before, "traceback"):
        if stat.size_diff <= 0:
            continue
        frames = list(stat.traceback)  # oldest first: the allocating line is the last
        ours = next((f for f in reversed(frames) if _ours(f.filename)), None)
        where = f"{_short(frames[-1].filename)}:{frames[-1].lineno}"
        if ours is not None and ours is not frames[-1]:
            where += f" <- {_short(ours.filename)}:{ours.lineno}"
        sites.append(Growth(stat.size_diff / 1024, stat.count_diff, where))
        if len(sites) == top:
            break
    return sites


def _ours(path: str) -> bool:
    """Whether ``path`` is a module of this repository (not of its virtual environment)."""
    return path.startswith(_REPO + "/") and "/.venv/" not in path


def _short(path: str) -> str:
    if _ours(path):
        return path[len(_REPO) + 1 :]
    return "/".join(path.split("/")[-2:])


def measure(
    minutes: int = 180, symbols: int = 50, rate: float = 50.0, batch_s: float = 10.0,
    sample_min: int = 10, trace_min: int = 0,
) -> StateMemoryReport:  # fmt: skip
    """Run the step over ``minutes`` of the synthetic market's event time, sampling as it goes.

    Then ``trace_min`` more minutes under ``tracemalloc`` (0: none), whose growth by site is
    the report's :attr:`StateMemoryReport.growth`.
    """
    views = MaterializedViews.resolve(market_definitions("state_memory", source_topic=TOPIC), TOPIC)
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, TOPIC, Trade)
    decoder = EventDecoder(store, views.plan.source)
    total = minutes + trace_min
    market = SyntheticMarket(
        MarketConfig(start=START, symbols=symbols, rate=rate, seed=7, duration_s=total * 60.0)
    )
    report = StateMemoryReport(minutes, symbols, rate, batch_s, _reach_min(views))
    states = {name: PartitionState() for name in views.plans}
    began = time.monotonic()
    report.samples.append(_sample(0, states, began))
    due = sample_min
    start_us = int(START.timestamp() * 1e6)
    traced: tracemalloc.Snapshot | None = None
    census: tuple[int, collections.Counter[str]] | None = None
    for end_us, records in _batches(market, serializer, batch_s):
        if len(records):
            run_step(records, states, decoder, views.plans, views.plan.source)
            report.trades += len(records)
        for state in states.values():  # what a commit changes in the live states
            state.take_new_events()
            state.horizons()
        del records
        while end_us - start_us >= due * 60_000_000 and due <= total:
            report.samples.append(_sample(due, states, began))
            print(f"[state_memory] {report.samples[-1]}", flush=True)
            if census is None and report.reach_min <= due < minutes:
                census = (due, _object_types())
            if due == minutes and census is not None:
                report.types = _type_changes(census[1], _object_types(), top=10)
                report.types_between = (census[0], due)
            if due == minutes and trace_min:
                tracemalloc.start(_FRAMES)
                traced = tracemalloc.take_snapshot()
                report.traced_from = due
            due = min(due + sample_min, total) if due < total else total + 1
    if traced is not None:
        gc.collect()
        report.growth = _growth(traced, tracemalloc.take_snapshot(), top=10)
        tracemalloc.stop()
    return report


def _per_hour(samples: list[Sample], values: list[int]) -> float:
    """Least-squares growth of ``values`` (one per sample) per hour of event time."""
    if len(samples) < 3:
        return math.nan
    hours = np.array([s.minute for s in samples], np.float64) / 60.0
    return float(np.polyfit(hours, np.array(values, np.float64), 1)[0])


def markdown(report: StateMemoryReport) -> str:
    """The section of ``bench/RESULTS.md``."""
    wall = report.samples[-1].wall_s if report.samples else 0.0
    lines = [
        "#### Python blocks against the engine's state, past the longest window",
        "",
        f"`processors.step.run_step` on the views of `registry/` over {report.minutes} minutes "
        f"of the synthetic market's event time ({report.symbols} symbols, {report.rate:g} "
        f"trades/s, batches of {report.batch_s:g} s, one partition; {report.trades:,} trades "
        f"in all), in one process without a server: {wall:.0f} s of wall time. The longest "
        f"reach of the views is {report.reach_min:.1f} minutes (`ohlcv_1h`: its hour, the hour "
        "before, a tile and the lateness). Blocks are counted after a full collection.",
        "",
        "| event minute | Python blocks | tiles held | open tiles' events | RSS MiB | wall s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.samples:
        mark = " (traced from here)" if s.minute == report.traced_from else ""
        lines.append(
            f"| {s.minute}{mark} | {s.blocks:,} | {s.held.tiles:,} | {s.held.open_events:,} | "
            f"{s.rss_mib:.0f} | {s.wall_s:.0f} |"
        )
    filling = [s for s in report.samples if s.minute <= report.reach_min]
    full = [s for s in report.samples if report.reach_min <= s.minute <= report.minutes]
    if filling and full:

        def growth(samples: list[Sample]) -> str:
            blocks = _per_hour(samples, [s.blocks for s in samples])
            tiles = _per_hour(samples, [s.held.tiles for s in samples])
            return f"blocks {blocks:+,.0f}, tiles {tiles:+,.0f}"

        lines += [
            "",
            "Growth per hour of event time (least squares), while the windows fill (minutes 0 "
            f"to {filling[-1].minute}): {growth(filling)}; once they are full (minutes "
            f"{full[0].minute} to {full[-1].minute}): {growth(full)}.",
        ]
    if report.types_between is not None:
        first, last = report.types_between
        lines += [
            "",
            f"Live objects the collector tracks, by type, at minutes {first} and {last} (the "
            "ten types that changed most; none listed: none changed):",
            "",
            "| type | objects then | objects at the end | change |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| `{t.name}` | {t.before:,} | {t.after:,} | {t.after - t.before:+,} |"
            for t in report.types
        ] or ["| none | | | |"]
    if report.traced_from is not None:
        lines += [
            "",
            f"Allocation sites holding more at minute {report.samples[-1].minute} than at minute "
            f"{report.traced_from} (`tracemalloc`, {_FRAMES} frames, snapshots compared by "
            "traceback; the allocating line, then the innermost line of this repository that "
            "led to it), the largest ten:",
            "",
            "| KiB | blocks | where |",
            "|---:|---:|---|",
        ]
        lines += [f"| {g.size_kib:+,.1f} | {g.blocks:+,} | `{g.where}` |" for g in report.growth]
        if not report.growth:
            lines.append("| 0 | 0 | nothing grew |")
    return "\n".join(lines) + "\n"


def run(settings: Settings | None = None) -> str:
    """Run it (``settings`` unused: no server is involved)."""
    report = measure(
        minutes=int(os.environ.get("STATE_MEMORY_MINUTES", "180")),
        symbols=int(os.environ.get("STATE_MEMORY_SYMBOLS", "50")),
        rate=float(os.environ.get("STATE_MEMORY_RATE", "50")),
        batch_s=float(os.environ.get("STATE_MEMORY_BATCH_S", "10")),
        sample_min=int(os.environ.get("STATE_MEMORY_SAMPLE_MIN", "10")),
        trace_min=int(os.environ.get("STATE_MEMORY_TRACE_MIN", "0")),
    )
    return markdown(report)


if __name__ == "__main__":
    print(run())
