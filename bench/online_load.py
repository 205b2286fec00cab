"""GetOnlineFeatures driven by the Go load generator, beside the echo under the same load.

Python threads in one process make a poor load generator: at 8 threads the bare echo reached
only ~2,800 calls/s, so those figures measure the client as much as the server. Here the load
comes from ``bench/loadgen`` (Go, request bytes sent as they are, responses never decoded), at
fixed concurrencies (closed loop) and at fixed arrival rates (open loop: a call starts on
schedule whether or not earlier ones returned, and its latency counts from that schedule, so
queueing shows). The generator's own ceiling comes first: the same loads against its own Go echo
server, which must answer well above what the servers here reach for their figures to be theirs.
Every target is measured in interleaved rounds (each load: the Go echo, the Python echo, then our
server's variants); tables give medians of the rounds and the median of the per-round ratios to
the Python echo, which runs on the same event loop as our server. Server CPU per call is the
server process's CPU time over the measurement divided by its calls; on 2 cores shared with the
generator (and with other work) it is steadier than latency.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from bench.go_load import Load
from bench.go_load import LoadResult
from bench.go_load import drive
from bench.go_load import go_echo
from bench.stats import doc_paragraph
from bench.stats import markdown_table

__all__ = ["Target", "measure"]

CLOSED = (Load(concurrency=1), Load(concurrency=8), Load(concurrency=32))
OPEN_SHARES = (0.5, 0.8)
"""Open-loop rates, as shares of the Python echo's calls/s at 32 in flight (measured first)."""
SECONDS = 1.0
WARMUP = 20
GO_ECHO, ECHO = "go-echo", "echo"


@dataclass(frozen=True)
class Target:
    """A server to drive: where, which method, and its process (for its CPU time)."""

    label: str
    port: int
    method: str
    pid: int


@dataclass(frozen=True)
class _Sample:
    result: LoadResult
    server_us: float
    """The server's CPU µs per call (failed ones included)."""

    @property
    def client_us(self) -> float:
        """The generator's CPU µs per call."""
        return self.result.cpu_s / max(1, self.result.calls) * 1e6


def _cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _run(target: Target, request: bytes, size: int, load: Load) -> _Sample:
    before = _cpu_s(target.pid)
    result = drive(
        f"127.0.0.1:{target.port}",
        target.method,
        request,
        load,
        seconds=SECONDS,
        metadata={"x-response-size": str(size)},
        warmup_calls=WARMUP,
    )
    calls = result.calls + result.errors + WARMUP
    return _Sample(result, (_cpu_s(target.pid) - before) / calls * 1e6)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def measure(
    targets: Sequence[Target],
    requests: Mapping[int, bytes],
    response_sizes: Mapping[int, int],
    rounds: int,
    python_qps: Mapping[tuple[str, int], float] | None = None,
) -> str:
    """Markdown: the generator's ceiling, then each target under each load, beside the echo.

    ``targets`` must include one labelled ``"echo"`` (the Python echo of the same sizes);
    ``requests`` and ``response_sizes`` are by number of entities; ``python_qps`` (target label
    and entities to calls/s) is what Python threads reached with 8 calls in flight, set beside
    the generator's at 8.
    """
    samples: dict[tuple[str, int, str], list[_Sample]] = {}
    with go_echo() as echo_server:
        everyone = [Target(GO_ECHO, echo_server.port, "/bench.Echo/Call", echo_server.pid)]
        everyone += targets
        echo = next(t for t in targets if t.label == ECHO)
        rates = {
            n: [
                share * _run(echo, requests[n], response_sizes[n], CLOSED[-1]).result.qps
                for share in OPEN_SHARES
            ]
            for n in requests
        }
        for _ in range(rounds):
            for n, request in requests.items():
                loads = [*CLOSED, *(Load(rate=round(rate, -1)) for rate in rates[n])]
                for load in loads:
                    for target in everyone:
                        sample = _run(target, request, response_sizes[n], load)
                        samples.setdefault((target.label, n, load.label), []).append(sample)
    return _report(samples, [t.label for t in everyone], python_qps or {})


def _report(
    samples: dict[tuple[str, int, str], list[_Sample]],
    order: list[str],
    python_qps: Mapping[tuple[str, int], float],
) -> str:
    rows: list[list[object]] = []
    errors: dict[str, str] = {}
    keys = sorted(samples, key=lambda k: (order.index(k[0]), k[1], _load_order(k[2])))
    for label, n, load in keys:
        runs = samples[(label, n, load)]
        echo = samples.get((ECHO, n, load))
        ratio = ""
        if label not in (ECHO, GO_ECHO) and echo:
            pairs = list(zip(runs, echo, strict=True))
            p99 = _median([r.result.p99_ms / e.result.p99_ms for r, e in pairs])
            qps = _median([r.result.qps / e.result.qps for r, e in pairs])
            ratio = f"{p99:.2f}x / {qps:.0%}"
        rows.append(
            [
                label,
                f"{n} x 10",
                load,
                _median([r.result.p50_ms for r in runs]),
                _median([r.result.p99_ms for r in runs]),
                _median([r.result.qps for r in runs]),
                _median([r.server_us for r in runs]),
                _median([r.client_us for r in runs]),
                ratio,
                sum(r.result.errors for r in runs),
            ]
        )
        for r in runs:
            if r.result.first_error:
                errors.setdefault(f"{label}, {n} x 10, {load}", r.result.first_error)
    late = sum(r.result.late for runs in samples.values() for r in runs)
    beside = [
        f"{label}, {n} x 10: {_median([r.result.qps for r in at8]):,.0f} calls/s from the "
        f"generator against {qps:,.0f} from 8 Python threads"
        for (label, n), qps in sorted(python_qps.items())
        if (at8 := samples.get((label, n, "8 in flight")))
    ]
    return "\n\n".join(
        [
            "## Load from the Go generator (bench/loadgen)",
            doc_paragraph(__doc__, 1),
            markdown_table(
                [
                    "server",
                    "entities x features",
                    "load",
                    "p50 ms",
                    "p99 ms",
                    "QPS",
                    "server CPU µs/call",
                    "generator CPU µs/call",
                    "p99 / echo, QPS / echo",
                    "failed calls (all rounds)",
                ],
                rows,
            ),
            f"Servers: {GO_ECHO} is the generator's own Go echo (its ceiling); echo is the Python "
            "echo of the same sizes; the others are ours as labelled above. Open-loop calls that "
            f"could not start on schedule (every one of 512 slots busy): {late}. Failed calls "
            "are left out of the latencies and QPS; the first error of each load that had any:\n\n"
            + ("\n".join(f"- {where}: {error}" for where, error in errors.items()) or "- none"),
            "8 calls in flight, the Go generator beside Python threads (same run, medians):\n\n"
            + "\n".join(f"- {line}" for line in beside),
        ]
    )


def _load_order(label: str) -> tuple[int, float]:
    """Closed loops by concurrency, then open loops by rate."""
    number = float(label.split()[-2 if label.startswith("open") else 0].replace(",", ""))
    return (1 if label.startswith("open") else 0, number)
