"""What Prometheus metrics cost GetOnlineFeatures: the same server with metrics on and off.

Two server processes of the same code, one built with ``process_telemetry`` (Prometheus
registry served on a free port, the gRPC histogram, in-flight and cache counters recorded on
every call) and one with the default no-op telemetry, answer the same requests in alternating
rounds; the figure is server CPU per call (the process's CPU time over each measurement),
steadier than latency on a shared machine. A scrape of the metrics endpoint runs every second
during the measurements with metrics on, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import grpc
import psutil
import requests

from bench.bench_online import METHOD
from bench.bench_online import THREADS
from bench.bench_online import _cpu_s
from bench.bench_online import _measure
from bench.bench_online import _request
from bench.bench_online import _write_rows
from featurestore.config import GrpcSettings
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.config import settings_env

ROUNDS, SECONDS = 5, 3.0
LOADS = (("1 in flight", 1), (f"{THREADS} threads", THREADS))


def _start(mode: str, settings: Settings, project: str) -> tuple[subprocess.Popen[bytes], int, int]:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_metrics", "serve", project, mode],
        stdout=subprocess.PIPE,
        env={**os.environ, **settings_env(settings), "FEATURESTORE_METRICS__GRPC_PORT": "0"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert child.stdout is not None
    port, metrics_port = (int(x) for x in child.stdout.readline().split())
    return child, port, metrics_port


def run(settings: Settings) -> str:
    project = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_write_rows(settings, project))
    children: list[subprocess.Popen[bytes]] = []
    per_call: dict[tuple[str, str], list[float]] = {}
    load_at_start = os.getloadavg()[0]
    try:
        servers: dict[str, tuple[int, int, psutil.Process]] = {}
        for mode in ("off", "on"):
            child, port, metrics_port = _start(mode, settings, project)
            children.append(child)
            servers[mode] = (port, metrics_port, psutil.Process(child.pid))
        payload = _request(1)
        for _ in range(ROUNDS):
            for load, threads in LOADS:
                for mode, (port, metrics_port, process) in servers.items():
                    stop = threading.Event()
                    scraper = threading.Thread(target=_scrape, args=(metrics_port, stop))
                    if metrics_port:
                        scraper.start()
                    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                        raw = channel.unary_unary(METHOD)

                        def call(r: Any = raw) -> object:
                            return r(payload, timeout=5)

                        before = _cpu_s(process)
                        latencies, _ = _measure(call, SECONDS, threads)
                        spent = _cpu_s(process) - before
                    stop.set()
                    if metrics_port:
                        scraper.join()
                    per_call.setdefault((mode, load), []).append(spent / len(latencies) * 1e6)
        families = requests.get(
            f"http://127.0.0.1:{servers['on'][1]}/metrics", timeout=5
        ).text.count("# TYPE")
    finally:
        for child in children:
            child.terminate()
            child.wait(30)
    lines = [
        "GetOnlineFeatures, 1 entity x 10 features, row cache and response memo on (the "
        f"defaults); {ROUNDS} alternating rounds of {SECONDS:g} s per load; server CPU per call, "
        "median of the rounds. Metrics on: the Prometheus registry served and scraped every "
        f"second ({families} families), the handling-seconds histogram, in-flight and cache "
        "counters recorded on every call.",
        "",
        "| load | metrics off µs/call | metrics on µs/call | overhead |",
        "|---|---|---|---|",
    ]
    for load, _ in LOADS:
        off = statistics.median(per_call[("off", load)])
        on = statistics.median(per_call[("on", load)])
        lines.append(f"| {load} | {off:.1f} | {on:.1f} | {(on / off - 1) * 100:+.1f} % |")
    lines += [
        "",
        "Per round (off / on µs/call): "
        + "; ".join(
            f"{load}: "
            + ", ".join(
                f"{a:.0f}/{b:.0f}"
                for a, b in zip(per_call[("off", load)], per_call[("on", load)], strict=True)
            )
            for load, _ in LOADS
        ),
        "",
        f"Load average (1 min) at the start / end: {load_at_start:.2f} / "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, shared with other work.",
    ]
    return "\n".join(lines)


def _scrape(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def _serve(project: str, mode: str) -> None:
    from featurestore.online.testing import market_catalog
    from featurestore.service import create_server
    from featurestore.service.server import new_event_loop
    from featurestore.telemetry import Telemetry
    from featurestore.telemetry import process_telemetry

    async def main() -> None:
        base = load_settings()
        settings = base.model_copy(update={"grpc": GrpcSettings(port=0)})
        telemetry = process_telemetry(settings, "grpc", 0) if mode == "on" else Telemetry.disabled()
        handle, port = await create_server(settings, market_catalog(project), telemetry=telemetry)
        await handle.start()
        metrics_port = telemetry.endpoint.port if telemetry.endpoint is not None else 0
        print(port, metrics_port, flush=True)
        await handle.wait_for_termination()

    kind = load_settings().service.event_loop
    with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as runner:
        runner.run(main())


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2], sys.argv[3])
    else:
        print(run(load_settings()))
