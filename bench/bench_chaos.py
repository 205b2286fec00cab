"""Chaos: each of the 8 components SIGKILLed in turn under load; nothing lost, nothing doubled.

The harness is :mod:`bench.chaos`; this runs it on a stack of its own (never the shared one)
and writes the table. Parameters from the environment (``make bench ARGS=chaos`` with them
set): ``CHAOS_RATE`` trades/s (5000), ``CHAOS_COMPONENTS`` (comma-separated, default all 8),
``CHAOS_WARMUP_S`` (30), ``CHAOS_STARTUP`` (1: first time each component's start alone, before
the load; 0: skip).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psutil

from bench.chaos import COMPONENTS
from bench.chaos import ChaosReport
from bench.chaos import run_chaos
from bench.own_stack import OwnStack
from featurestore.config import Settings

__all__ = ["markdown", "run"]

OWN_STACK = True
"""Runs on a stack of its own (:mod:`bench.own_stack`): ``python -m bench`` starts no shared one."""


def run(settings: Settings) -> str:
    """Run the chaos suite (``settings`` is the shared stack's: unused, on purpose)."""
    rate = float(os.environ.get("CHAOS_RATE", "5000"))
    components = [c for c in os.environ.get("CHAOS_COMPONENTS", ",".join(COMPONENTS)).split(",")]
    warmup = float(os.environ.get("CHAOS_WARMUP_S", "30"))
    startup = os.environ.get("CHAOS_STARTUP", "1") != "0"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="chaos-") as folder:
        own = OwnStack(Path(folder) / "stack", rate=rate)
        report = run_chaos(
            own,
            components,
            warmup_s=warmup,
            startup=startup,
            on_phase=lambda p: print(f"[chaos] {p}", flush=True),
        )
    return markdown(report, load_before, os.getloadavg()[0])


def _s(value: float | None) -> str:
    return "not within the limit" if value is None else f"{value:.1f}"


def markdown(report: ChaosReport, load_before: float, load_after: float) -> str:
    """The section of ``bench/RESULTS.md``."""
    lines = [
        "#### Chaos: SIGKILL under load",
        "",
        f"A stack of its own (own data folder and ports; the shared stack untouched), the "
        f"synthetic market at {report.rate:,.0f} trades/s, a GetOnlineFeatures caller (all "
        f"symbols, every 20 ms) and a StreamAnomalies subscriber (Python SDK, resuming by token) "
        f"all along. One component at a time gets SIGKILL (its whole process group); the "
        f"supervisor starts it again, nobody else acts. Healthy: kill -> it and every service "
        f"healthy. Back where it was: healthy, and the processor no further behind the topic's "
        f"end than before the kill (+ 5 s of feed). Drained: healthy, and the processor "
        f"committed up to the topic's end of the moment it was healthy (never, when the "
        f"processor is slower than the feed). Limit {report.recover_limit_s:.0f} s. "
        f"{psutil.cpu_count()} cores shared with other work: load average {load_before:.1f} "
        f"before, {load_after:.1f} after. Run {report.seconds:.0f} s, {report.trades:,} trades. "
        "Start alone: the component stopped and started by itself before the load, until "
        "healthy. Itself back: kill -> the component healthy (the supervisor's wait and its "
        "start-up under load).",
        "",
        "| killed | start alone s | itself back s | healthy s | back where it was s (lag "
        "before) | drained s | restarts | requests until back | failed (code: n) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kill in report.kills:
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(kill.failed.items())) or "none"
        alone = report.startup.get(kill.component)
        lines.append(
            f"| {kill.component} | {'-' if alone is None else f'{alone:.1f}'} | "
            f"{_s(kill.alone_s)} | {_s(kill.healthy_s)} | {_s(kill.back_s)} "
            f"({kill.lag_before if kill.lag_before is not None else '?'}) | "
            f"{_s(kill.recovered_s)} | {kill.restarts} | {kill.requests} | {failed} |"
        )
    codes = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.codes.items()))
    lines += [
        "",
        "| check | result |",
        "|---|---|",
        f"| events lost (trades in the log - trades counted by the last bar of each minute) | "
        f"{report.lost} |",
        f"| duplicate rows (same symbol and time twice in bars_1m) | {report.duplicated} |",
        f"| bars_1m vs independent recomputation ({report.bars_rows:,} rows) | "
        f"{report.bars_missing} missing, {report.bars_extra} extra, {report.bars_different} "
        f"different |",
        f"| the engine's rows at each closed minute boundary b (at b - 1 us: the minute's last "
        f"bar; at b: an empty bar) as documented | "
        f"{report.boundary_rows - report.boundary_different} of {report.boundary_rows} |",
        f"| online converged (latest offline row of each of {report.online_checked} symbols) | "
        f"{'yes' if report.converged else f'no: {report.online_different} differ'} |",
        f"| GetOnlineFeatures answers checked against the offline table | "
        f"{report.answers_checked:,} checked, {report.answers_wrong} wrong |",
        f"| GetOnlineFeatures calls by status | {codes} |",
        f"| anomalies in the topic / duplicate ids | {report.anomalies} / "
        f"{report.anomaly_duplicates} |",
        f"| StreamAnomalies subscriber: missing / received twice | "
        f"{report.subscriber_missing} / {report.subscriber_repeated} |",
        "| human action | none (the supervisor restarts; the services ride through) |",
    ]
    lines += [f"\n- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"
