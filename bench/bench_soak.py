"""Soak: GetOnlineFeatures flat out plus 5,000 trades/s of ingest; memory and descriptors over time.

On a stack of its own (:mod:`bench.own_stack`; the shared stack is neither loaded nor touched):
the synthetic market feeds the trades topic at ``SOAK_RATE`` trades/s (5000) through ingest, the
processor and the scorer, while ``ghz`` (Go, a process of its own, found by reflection) calls
GetOnlineFeatures for 10 symbols with ``SOAK_CONCURRENCY`` (16) calls in flight, closed loop:
the highest rate the server sustains on this machine, in one-minute runs, each reporting its
rate, p50 and p99. Every ``SOAK_SAMPLE_S`` (10) s the memory (proportional set size: a page
shared by n processes counts 1/n in each) and open file descriptors of each process of the
stack, with its children (Spark's JVM, PostgreSQL's backends), are sampled. Duration
``SOAK_MINUTES`` (10). The slope is a least-squares line over the samples after the first
minute (warm-up: caches and pools fill then), and again over the run's second half: a leak
keeps its slope, a warm-up flattens.

Memory that a process only touches once cannot tell a leak by its size alone, so two more
figures: the unique set size (USS, the pages no other process shares: PostgreSQL's backends
without the shared buffers they touch, which PSS still counts while the buffer pool fills up
to ``shared_buffers``), and for a JVM (Kafka's broker; Spark's driver with the Spark engine)
its heap after a full GC, every ``SOAK_HEAP_S`` (60) s: ``jcmd GC.run`` then ``GC.heap_info``.
A JVM's RSS grows until its heap's pages have all been touched once (``-Xms`` = ``-Xmx``), a
warm-up; what survives a full GC is what it holds, and is flat unless it leaks. Each full GC
pauses that JVM for a moment (Kafka's: tens of ms here), once a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import psutil

from bench.chaos import synthetic_symbols
from bench.own_stack import SERVERS
from bench.own_stack import OwnStack
from featurestore.config import Settings
from featurestore.stack.base import Component
from processors.status import read_status

__all__ = ["SoakReport", "run", "soak"]

OWN_STACK = True
"""Runs on a stack of its own (:mod:`bench.own_stack`): ``python -m bench`` starts no shared one."""

SERVICES = ("feed", "grpc", "processors", "scorer")


@dataclass
class Minute:
    """One ghz run of about a minute."""

    calls: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    messages: dict[str, int] = field(default_factory=dict)
    """ghz's error texts and their counts (what the codes were)."""


@dataclass
class SoakReport:
    """Samples and per-minute figures of one soak."""

    minutes: list[Minute] = field(default_factory=list)
    samples: dict[str, list[tuple[float, float, int, float]]] = field(default_factory=dict)
    """Per process: (seconds since start, PSS MiB of it and its children, open descriptors,
    USS MiB)."""
    heaps: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    """Per process with a JVM: (seconds since start, heap MiB after a full GC, metaspace MiB)."""
    blocks: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """Per processor: (seconds since start, its allocated Python blocks, from its status file)."""
    held: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    """Per processor: (seconds since start, the tiles and the open tiles' events its feature
    engine holds, from its status file)."""
    rate: float = 0.0
    trades: int = 0


def _tree(component: Component) -> tuple[float, int, float] | None:
    """PSS MiB, open descriptors and USS MiB of the component's process and its children."""
    procs = _procs(component)
    if not procs:
        return None
    pss = uss = fds = 0
    for proc in procs:
        try:
            # PSS: a page shared by n processes counts 1/n in each (PostgreSQL's backends share
            # its buffers; their RSS summed counted those pages once per backend). USS: pages
            # of this process alone.
            info = proc.memory_full_info()
            pss += getattr(info, "pss", info.rss)
            uss += getattr(info, "uss", info.rss)
            fds += proc.num_fds()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pss / 2**20, fds, uss / 2**20


def _procs(component: Component) -> list[psutil.Process]:
    pid = component.process.pid()
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


_USED = re.compile(r"used (\d+)K")
_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+:\d+")


def _jvm_heap(component: Component) -> tuple[float, float] | None:
    """Heap MiB after a full GC and metaspace MiB of the component's JVM; None without one."""
    jcmd = shutil.which("jcmd")
    java = []
    for proc in _procs(component):
        try:
            if Path(proc.exe()).name == "java":
                java.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    if jcmd is None or not java:
        return None
    try:
        subprocess.run([jcmd, str(java[0]), "GC.run"], capture_output=True, timeout=60, check=True)
        info = subprocess.run(
            [jcmd, str(java[0]), "GC.heap_info"], capture_output=True, text=True, timeout=60,
            check=True,
        ).stdout  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return None
    used = [int(k) for k in _USED.findall(info)]
    if len(used) < 2:  # the heap's line, then Metaspace's
        return None
    return used[0] / 1024, used[1] / 1024


def _ghz(target: str, symbols: list[str], seconds: int, concurrency: int) -> Minute:
    ghz = shutil.which("ghz") or str(Path.home() / "go" / "bin" / "ghz")
    request = {
        "features": {"features": ["bars_1m:close", "bars_1m:volume", "rolling_1m:vwap_5m"]},
        "entities": {"symbol": {"values": [{"stringValue": s} for s in symbols]}},
    }
    run = subprocess.run(
        [ghz, "--insecure", "--call", "featurestore.v1.FeatureService.GetOnlineFeatures",
         "-d", json.dumps(request), "-z", f"{seconds}s", "-c", str(concurrency),
         "--connections", "2", "--format", "json", target],
        capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"ghz failed: {run.stderr[-2000:]}")
    report = json.loads(run.stdout)
    latency = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    codes = dict(report.get("statusCodeDistribution") or {})
    return Minute(
        calls=int(report["count"]),
        rps=float(report["rps"]),
        p50_ms=latency.get(50, float("nan")),
        p99_ms=latency.get(99, float("nan")),
        errors={k: v for k, v in codes.items() if k != "OK"},
        messages=dict(report.get("errorDistribution") or {}),
    )


def soak(
    own: OwnStack, minutes: float, concurrency: int, sample_s: float, heap_s: float = 60.0
) -> SoakReport:
    """Bring ``own`` up, soak it for ``minutes``, bring it down."""
    report = SoakReport(rate=own.rate)
    stop = threading.Event()
    try:
        own.up()
        own.start_feed()
        components = [own.stack.component(name) for name in (*SERVERS, *SERVICES)]
        began = time.monotonic()

        def sample() -> None:
            heap_due = 0.0
            while not stop.is_set():
                at = time.monotonic() - began
                for component in components:
                    got = _tree(component)
                    if got is not None:
                        report.samples.setdefault(component.name, []).append((at, *got))
                for status in sorted((own.settings.data_dir / "processors").glob("*/status.json")):
                    data = read_status(status) or {}
                    name = status.parent.name
                    if data.get("python_blocks") is not None:
                        report.blocks.setdefault(name, []).append((at, data["python_blocks"]))
                    if data.get("state_tiles") is not None:
                        held = (at, data["state_tiles"], data.get("state_open_events") or 0)
                        report.held.setdefault(name, []).append(held)
                if at >= heap_due:
                    heap_due = at + heap_s
                    for component in components:
                        heap = _jvm_heap(component)
                        if heap is not None:
                            report.heaps.setdefault(component.name, []).append((at, *heap))
                stop.wait(sample_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        target = f"{own.settings.grpc.host}:{own.settings.grpc.port}"
        symbols = synthetic_symbols(own.symbols)[:10]
        end = began + minutes * 60
        while time.monotonic() < end - 5:
            seconds = int(min(60, end - time.monotonic()))
            report.minutes.append(_ghz(target, symbols, seconds, concurrency))
            print(f"[soak] {report.minutes[-1]}", flush=True)
        stop.set()
        sampler.join(30)
    finally:
        stop.set()
        own.down()
    return report


def _slope(points: Sequence[Sequence[float]], index: int, after_s: float = 60.0) -> float:
    """Least-squares growth per minute of column ``index`` of the points from ``after_s`` on."""
    kept = [(at, float(point[index])) for point in points if (at := point[0]) >= after_s]
    if len(kept) < 3:
        return float("nan")
    t, v = np.array(kept).T
    return float(np.polyfit(t / 60.0, v, 1)[0])


def _half(points: Sequence[Sequence[float]]) -> float:
    """When the second half of the run's samples begins."""
    return points[-1][0] / 2 if points else 0.0


def markdown(
    report: SoakReport, minutes: float, concurrency: int, load: tuple[float, float]
) -> str:
    """The section of ``bench/RESULTS.md``."""
    lines = [
        "#### Soak",
        "",
        f"{minutes:g} minutes on a stack of its own: the synthetic market at {report.rate:,.0f} "
        f"trades/s through ingest, the processor and the scorer, and ghz calling "
        f"GetOnlineFeatures (10 symbols, 3 features) with {concurrency} calls in flight, closed "
        f"loop (the highest rate the server sustains here). {psutil.cpu_count()} cores shared "
        f"with other sessions' work: load average {load[0]:.1f} before, {load[1]:.1f} after; "
        "every figure below is of this shared machine.",
        "",
        "| minute | calls | calls/s | p50 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for i, m in enumerate(report.minutes, 1):
        errors = ", ".join(f"{k}: {v}" for k, v in m.errors.items()) or "none"
        lines.append(
            f"| {i} | {m.calls:,} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {errors} |"
        )
    messages: dict[str, int] = {}
    for m in report.minutes:
        for text, n in m.messages.items():
            text = _ADDRESS.sub("<address>", text)  # one line per cause, not per connection
            messages[text] = messages.get(text, 0) + n
    if messages:
        lines += ["", "The errors' texts (ghz's), over the run:", ""]
        lines += [f"- {n}: `{text}`" for text, n in sorted(messages.items(), key=lambda t: -t[1])]
    lines += [
        "",
        "Memory and descriptors of each process with its children; slopes per minute from the "
        "second minute on, and over the second half of the run:",
        "",
        "| process (with children) | PSS MiB first -> last | PSS slope MiB/min (2nd half) | "
        "USS MiB first -> last | USS slope MiB/min (2nd half) | fds first -> last | "
        "fds slope /min (2nd half) |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    for name, points in report.samples.items():
        if not points:
            continue
        first, last, half = points[0], points[-1], _half(points)
        lines.append(
            f"| {name} | {first[1]:.0f} -> {last[1]:.0f} | {_slope(points, 1):+.2f} "
            f"({_slope(points, 1, half):+.2f}) | {first[3]:.0f} -> {last[3]:.0f} | "
            f"{_slope(points, 3):+.2f} ({_slope(points, 3, half):+.2f}) | {first[2]} -> "
            f"{last[2]} | {_slope(points, 2):+.2f} ({_slope(points, 2, half):+.2f}) |"
        )
    if report.blocks:
        lines += [
            "",
            "Python memory blocks allocated in each processor (`sys.getallocatedblocks`, from its "
            "status file): growing with its memory, a Python object leak; flat while the memory "
            "grows, the allocator's fragmentation. Beside them, what its feature engine holds "
            "(status `state_tiles`, `state_open_events`): tiles grow until the event time has "
            "run past the longest view's reach (two hours, `ohlcv_1h`), open events with the "
            "rate; blocks that grow with the tiles are the windows filling, blocks that grow "
            "alone a leak (`bench/bench_state_memory.py` runs the engine past that reach):",
            "",
            "| processor | blocks first -> last | slope blocks/min (2nd half) | "
            "tiles first -> last | slope tiles/min (2nd half) | open events first -> last |",
            "|---|---|---:|---|---:|---|",
        ]
        for name, counts in report.blocks.items():
            held = report.held.get(name)
            tiles = events = slope = "n/a"
            if held:
                tiles = f"{held[0][1]:,} -> {held[-1][1]:,}"
                events = f"{held[0][2]:,} -> {held[-1][2]:,}"
                slope = f"{_slope(held, 1):+,.0f} ({_slope(held, 1, _half(held)):+,.0f})"
            lines.append(
                f"| {name} | {counts[0][1]:,} -> {counts[-1][1]:,} | {_slope(counts, 1):+,.0f} "
                f"({_slope(counts, 1, _half(counts)):+,.0f}) | {tiles} | {slope} | {events} |"
            )
    if report.heaps:
        lines += [
            "",
            "JVM heap after a full GC (`jcmd GC.run`, then `GC.heap_info`), once a minute:",
            "",
            "| process | heap after GC MiB, each minute | slope MiB/min (2nd half) | "
            "metaspace MiB first -> last |",
            "|---|---|---:|---|",
        ]
        for name, heaps in report.heaps.items():
            each = ", ".join(f"{h[1]:.0f}" for h in heaps)
            late = _slope(heaps, 1, _half(heaps))
            lines.append(
                f"| {name} | {each} | {_slope(heaps, 1):+.2f} ({late:+.2f}) | "
                f"{heaps[0][2]:.0f} -> {heaps[-1][2]:.0f} |"
            )
    return "\n".join(lines) + "\n"


def run(settings: Settings) -> str:
    """Run the soak (``settings`` is the shared stack's: unused, on purpose)."""
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    rate = float(os.environ.get("SOAK_RATE", "5000"))
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "16"))
    sample_s = float(os.environ.get("SOAK_SAMPLE_S", "10"))
    heap_s = float(os.environ.get("SOAK_HEAP_S", "60"))
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        own = OwnStack(Path(folder) / "stack", rate=rate)
        report = soak(own, minutes, concurrency, sample_s, heap_s)
    return markdown(report, minutes, concurrency, (before, os.getloadavg()[0]))
