"""GetOnlineFeatures against its floor (a bare gRPC echo of the same sizes) and against Feast.

Same Redis, same rows, one run: 100 symbols with both canonical views are written under a project
of this run's own (deleted afterwards), each symbol's rows with event times of their own (as real
data has). The feature servers and the echo server run as child processes
(``python -m bench.bench_online serve-features|serve-echo``) on the event loop the service is
configured with, so that none shares the client's GIL. All are called through the same raw-bytes
client (pre-serialized request, response bytes not parsed), so their difference is the server's own
work.
The echo and our server variants are measured in 3 interleaved rounds (echo, then each variant, for
every shape and load); the table gives the medians of the rounds and the median of the per-round
ratios to the echo. Variants: the default (row cache on: rows Redis has not invalidated are served
from memory; and since the same request comes again, its encoded response is reused while its rows
are unchanged), the response memo off (each call frames its response from the cached rows: what a
request not seen before costs, less its parsing), the row cache off (every call reads Redis), and
the row cache on while a child process rewrites every symbol's two rows every 0.5 s (400 rows/s,
write-if-newer through the online writer), so that part of the calls reads Redis again. The
Python SDK end to end (its request written, the call, the response decoded into NumPy columns) is
measured in the same rounds, right after the echo, one call in flight. Feast's
``get_online_features`` runs in this process on the same rows, and Feast's own feature server
(``feast serve``, HTTP/JSON, one worker) runs as a child process on loopback, called with
keep-alive sessions. Every target is
measured with one call in flight and with 8 client threads (bounded concurrency), for 1 and 100
entities x 10 features. Then the echo and our server are driven again by the Go load generator
(``bench/online_load.py``): fixed concurrencies and open-loop rates, with its own ceiling first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import psutil
import redis

from bench import online_load
from bench.own_stack import free_ports
from bench.stats import doc_paragraph
from bench.stats import markdown_table
from bench.stats import percentiles_ms
from featurestore.config import GrpcSettings
from featurestore.config import RedisSettings
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import RedisOnlineStore
from featurestore.online import RedisOnlineWriter
from featurestore.online.testing import BARS_1M
from featurestore.online.testing import ROLLING_1M
from featurestore.online.testing import delete_project_keys
from featurestore.online.testing import market_catalog

FEATURES = [
    *(f"bars_1m:{n}" for n in ("open", "high", "low", "close", "volume", "vwap")),
    *(f"rolling_1m:{n}" for n in ("vwap_5m", "sma_5", "sma_20", "volume_ratio")),
]
SYMBOLS = [f"SYM{i:03d}" for i in range(100)]
METHOD = "/featurestore.v1.FeatureService/GetOnlineFeatures"
ECHO = "/bench.Echo/Call"
SERIAL_S, CONCURRENT_S, THREADS, ROUNDS = 5.0, 2.0, 8, 3
"""Seconds per measurement with one call in flight (1,000-2,000 calls a second here: a p99 is
about the 50th-100th slowest call; at 1.5 s it was the ~20th, and a round's p99 moved by up to a
millisecond: bench/RESULTS.md, predict, 2026-12-04), and with ``THREADS`` threads; rounds."""
WRITE_EVERY_S = 0.5
WARMUP_CALLS = 20
TARGET_P99, TARGET_QPS = 1.3, 0.75
TARGET_SDK_P99 = 1.5


def _request(n: int) -> bytes:
    from featurestore._proto.v1 import feature_service_pb2
    from featurestore._proto.v1 import types_pb2

    message = feature_service_pb2.GetOnlineFeaturesRequest()
    message.features.features.extend(FEATURES)
    message.entities["symbol"].values.extend(types_pb2.Value(string_value=s) for s in SYMBOLS[:n])
    return message.SerializeToString()


def _rows(now: datetime) -> list[FeatureRow]:
    rows = []
    for i, symbol in enumerate(SYMBOLS):
        key = EntityKey.of(symbol=symbol)
        at = now - timedelta(milliseconds=7 * i)  # every symbol its own last event
        bars = {f.name: float(i) for f in BARS_1M.features if f.name != "trade_count"}
        rows.append(FeatureRow("bars_1m", key, at, {**bars, "trade_count": i}))
        rolling = {f.name: float(i) / 2 for f in ROLLING_1M.features}
        rows.append(FeatureRow("rolling_1m", key, at - timedelta(seconds=5), rolling))
    return rows


async def _write_rows(settings: Settings, project: str) -> None:
    rows = _rows(datetime.now(UTC))
    store = RedisOnlineStore.from_settings(settings.redis, market_catalog(project))
    try:
        await store.write(rows)
    finally:
        await store.close()


@contextmanager
def _redis_cluster(settings: Settings) -> Iterator[Settings]:
    """A Redis Cluster of this run's own (3 masters x 1 replica), stopped and deleted after."""
    from featurestore.stack import Stack

    with tempfile.TemporaryDirectory(prefix="bench-redis-cluster-") as tmp:
        base = free_ports(12)
        own = load_settings(
            {
                "FEATURESTORE_DATA_DIR": tmp,
                "FEATURESTORE_REDIS__CLUSTER": "true",
                "FEATURESTORE_REDIS__PORT": str(base),
                "FEATURESTORE_REDIS__BUS_PORT": str(base + 6),
            }
        )
        stack = Stack(own)
        names = [node.name for node in stack.redis_nodes]
        try:
            stack.up(names)
            yield settings.model_copy(update={"redis": own.redis})
        finally:
            stack.down(names)


def _masters(cfg: RedisSettings) -> list[redis.Redis]:
    """Clients of the masters (the only server when not a cluster), for their CPU time."""
    if not cfg.cluster:
        return [redis.Redis(host=cfg.host, port=cfg.port, **cfg.client_kwargs())]
    host, port = cfg.startup_nodes[0]
    with redis.Redis(host=host, port=port, **cfg.client_kwargs()) as client:
        slots = client.execute_command("CLUSTER", "SLOTS")
    addresses = sorted({(entry[2][0].decode() or host, int(entry[2][1])) for entry in slots})
    return [redis.Redis(host=h, port=p, **cfg.client_kwargs()) for h, p in addresses]


def _measure(call: Callable[[], object], seconds: float, threads: int) -> tuple[list[float], float]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    for _ in range(WARMUP_CALLS):
        call()
    # After the warm-up: on a loaded machine 20 slow calls (Feast's, 100 entities) can outlast
    # the whole window, which would leave nothing measured.
    stop_at = time.perf_counter() + seconds

    def loop(out: list[float]) -> None:
        while (start := time.perf_counter()) < stop_at:
            call()
            out.append(time.perf_counter() - start)

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(out,)) for out in latencies]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    flat = [x for out in latencies for x in out]
    return flat, len(flat) / elapsed


def _start_child(mode: str, settings: Settings, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, **settings_env(settings)}
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_online", mode, *args],
        stdout=subprocess.PIPE,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    return child, port


def _feast_store(tmp: Path, project: str, settings: Settings) -> Any:
    """A Feast repo on the same Redis, with the catalog's views (imports Feast: seconds)."""
    from feast import Entity
    from feast import FeatureStore
    from feast import FeatureView
    from feast import Field
    from feast import FileSource
    from feast.types import Float64
    from feast.types import Int64
    from feast.types import String
    from feast.value_type import ValueType as FeastValueType

    from featurestore.online import ValueType

    (tmp / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: {tmp / 'registry.db'}\nprovider: local\n"
        "online_store:\n  type: redis\n"
        f"  connection_string: {settings.redis.host}:{settings.redis.port},db={settings.redis.db}\n"
        "offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp))
    symbol = Entity(name="symbol", join_keys=["symbol"], value_type=FeastValueType.STRING)
    source = FileSource(path=str(tmp / "unused.parquet"), timestamp_field="event_timestamp")
    dtypes = {ValueType.FLOAT64: Float64, ValueType.INT64: Int64}
    views = [
        FeatureView(
            name=spec.name,
            entities=[symbol],
            ttl=spec.ttl,
            schema=[Field(name="symbol", dtype=String)]
            + [Field(name=f.name, dtype=dtypes[f.dtype]) for f in spec.features],
            source=source,
            online=True,
        )
        for spec in (BARS_1M, ROLLING_1M)
    ]
    store.apply([symbol, *views])
    return store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_feast_server(repo: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``feast serve`` on the bench's repo; returns the process and its base URL once healthy."""
    import requests

    port = _free_port()
    feast = Path(sys.executable).with_name("feast")
    child = subprocess.Popen(
        [str(feast), "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(port),
         "--no-access-log", "--max-requests", "1000000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return child, url
        except requests.RequestException:
            pass
        if child.poll() is not None:
            raise RuntimeError(f"feast serve exited with {child.returncode}")
        time.sleep(0.5)
    child.terminate()
    raise RuntimeError("feast serve did not become healthy in 120 s")


def _feast_http_call(url: str, n: int) -> Callable[[], object]:
    import requests

    local = threading.local()
    body = {"features": FEATURES, "entities": {"symbol": SYMBOLS[:n]}}

    def call() -> object:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        reply = session.post(f"{url}/get-online-features", json=body, timeout=10)
        reply.raise_for_status()
        return reply.content

    return call


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _redis_cpu_s(clients: list[redis.Redis]) -> float:
    total = 0.0
    for client in clients:
        info: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]  # sync client
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def run(settings: Settings) -> str:
    project = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_write_rows(settings, project))
    rows: list[list[object]] = []
    samples: dict[tuple[str, int, str], list[tuple[dict[str, float], float]]] = {}
    cpu: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
    load_at_start = os.getloadavg()[0]
    results: dict[tuple[str, int, str], tuple[dict[str, float], float]] = {}
    children: list[subprocess.Popen[bytes]] = []
    loads = (("1 in flight", 1, SERIAL_S), (f"{THREADS} threads", THREADS, CONCURRENT_S))
    resources = ExitStack()
    try:
        on_cluster = resources.enter_context(_redis_cluster(settings))
        asyncio.run(_write_rows(on_cluster, project))
        clustered, clustered_port = _start_child("serve-features", on_cluster, project)
        children.append(clustered)
        clustered_uncached, clustered_uncached_port = _start_child(
            "serve-features",
            on_cluster.model_copy(
                update={"service": on_cluster.service.model_copy(update={"online_cache_rows": 0})}
            ),
            project,
        )
        children.append(clustered_uncached)
        features, features_port = _start_child("serve-features", settings, project)
        children.append(features)
        uncached_settings = settings.model_copy(
            update={"service": settings.service.model_copy(update={"online_cache_rows": 0})}
        )
        uncached, uncached_port = _start_child("serve-features", uncached_settings, project)
        children.append(uncached)
        unmemoized_settings = settings.model_copy(
            update={
                "service": settings.service.model_copy(update={"online_response_memo_bytes": 0})
            }
        )
        unmemoized, unmemoized_port = _start_child("serve-features", unmemoized_settings, project)
        children.append(unmemoized)
        writer, _ = _start_child("write-rows", settings, project)
        children.append(writer)
        response_sizes = {}
        for n in (1, 100):
            request = _request(n)
            with grpc.insecure_channel(f"127.0.0.1:{features_port}") as channel:
                raw = channel.unary_unary(METHOD)
                response_sizes[n] = len(raw(request, timeout=5))
        echo, echo_port = _start_child("serve-echo", settings)
        children.append(echo)
        targets = {
            "echo": (echo_port, ECHO),
            "ours": (features_port, METHOD),
            "ours-unmemoized": (unmemoized_port, METHOD),
            "ours-uncached": (uncached_port, METHOD),
            "ours-writes": (features_port, METHOD),
            "cluster": (clustered_port, METHOD),
            "cluster-uncached": (clustered_uncached_port, METHOD),
        }
        channels = {
            t: grpc.insecure_channel(f"127.0.0.1:{port}") for t, (port, _) in targets.items()
        }
        servers = {t: psutil.Process(child.pid) for t, child in (
            ("echo", echo), ("ours", features), ("ours-unmemoized", unmemoized),
            ("ours-uncached", uncached), ("ours-writes", features), ("cluster", clustered),
            ("cluster-uncached", clustered_uncached),
        )}  # fmt: skip
        single_redis, cluster_masters = _masters(settings.redis), _masters(on_cluster.redis)
        redis_of = {
            t: cluster_masters if t.startswith("cluster") else single_redis for t in targets
        }
        from featurestore_client import FeatureStoreClient

        sdk = FeatureStoreClient(f"127.0.0.1:{features_port}")
        servers["sdk"], redis_of["sdk"] = servers["ours"], single_redis
        try:
            for _ in range(ROUNDS):
                for n in (1, 100):
                    payload = _request(n)
                    metadata = (("x-response-size", str(response_sizes[n])),)
                    for load, threads, seconds in loads:
                        # The SDK right after the echo: its ratio to the echo's p99 is its target.
                        for target in ("echo", "sdk", *(t for t in targets if t != "echo")):
                            call: Callable[[], object]
                            if target == "sdk":
                                if threads != 1:
                                    continue
                                entities = {"symbol": SYMBOLS[:n]}
                                call = partial(sdk.get_online_features, FEATURES, entities=entities)
                            else:
                                raw = channels[target].unary_unary(targets[target][1])
                                call = partial(raw, payload, timeout=5, metadata=metadata)

                            if target == "ours-writes":
                                writer.send_signal(signal.SIGUSR1)
                                time.sleep(WRITE_EVERY_S)
                            before = _cpu_s(servers[target]), _redis_cpu_s(redis_of[target])
                            lat, qps = _measure(call, seconds, threads)
                            after = _cpu_s(servers[target]), _redis_cpu_s(redis_of[target])
                            if target == "ours-writes":
                                writer.send_signal(signal.SIGUSR2)
                            samples.setdefault((target, n, load), []).append(
                                (percentiles_ms(lat), qps)
                            )
                            calls = len(lat) + WARMUP_CALLS
                            cpu.setdefault((target, n, load), []).append(
                                (
                                    (after[0] - before[0]) / calls * 1e6,
                                    (after[1] - before[1]) / calls * 1e6,
                                )
                            )
        finally:
            sdk.close()
            for master in (*single_redis, *cluster_masters):
                master.close()
            for channel in channels.values():
                channel.close()
        for key, runs in samples.items():
            pct = {q: _median([r[0][q] for r in runs]) for q in ("p50", "p90", "p99")}
            results[key] = (pct, _median([r[1] for r in runs]))
        go_section = _go_section(
            echo_port,
            echo.pid,
            features_port,
            features.pid,
            uncached_port,
            uncached.pid,
            response_sizes,
            results,
        )
        with tempfile.TemporaryDirectory() as tmp:
            feast = _feast_store(Path(tmp), project, settings)
            for n in (1, 100):
                entity_rows = [{"symbol": s} for s in SYMBOLS[:n]]

                def feast_call(e: list[dict[str, str]] = entity_rows) -> object:
                    return feast.get_online_features(features=FEATURES, entity_rows=e)

                for load, threads, seconds in loads:
                    lat, qps = _measure(feast_call, seconds, threads)
                    results[("feast", n, load)] = (percentiles_ms(lat), qps)
            feast_server, url = _start_feast_server(Path(tmp))
            children.append(feast_server)
            for n in (1, 100):
                http_call = _feast_http_call(url, n)
                for load, threads, seconds in loads:
                    lat, qps = _measure(http_call, seconds, threads)
                    results[("feast-server", n, load)] = (percentiles_ms(lat), qps)
    finally:
        for child in children:
            child.terminate()
            child.wait(15)
        resources.close()  # the cluster and its data
        delete_project_keys(settings.redis, project)

    labels = {
        "echo": "bare gRPC echo, same sizes (floor)",
        "ours": "GetOnlineFeatures (server, raw client; row cache on, the default)",
        "ours-unmemoized": "GetOnlineFeatures, row cache on, response memo off",
        "ours-uncached": "GetOnlineFeatures, row cache off (every call reads Redis)",
        "ours-writes": "GetOnlineFeatures, row cache on, rows rewritten at 400/s meanwhile",
        "cluster": "GetOnlineFeatures on Redis Cluster (3 masters), row cache on",
        "cluster-uncached": "GetOnlineFeatures on Redis Cluster (3 masters), row cache off",
        "sdk": "GetOnlineFeatures via the Python SDK (request written, response decoded into "
        "NumPy columns)",
        "feast": "Feast get_online_features (in process, same Redis rows)",
        "feast-server": "Feast feature server (feast serve, HTTP/JSON, same Redis rows)",
    }
    verdicts: list[str] = []
    sdk_verdicts: list[str] = []
    order = {name: i for i, name in enumerate(labels)}
    for (target, n, load), (pct, qps) in sorted(
        results.items(), key=lambda item: (order[item[0][0]], item[0][1], item[0][2][0] != "1")
    ):
        ratio = ""
        floor = results.get(("echo", n, load))
        if target != "echo" and floor:
            if (target, n, load) in samples:  # interleaved with the echo: per-round ratios
                runs, floors = samples[(target, n, load)], samples[("echo", n, load)]
                pairs = list(zip(runs, floors, strict=True))
                p99_ratio = _median([r[0]["p99"] / f[0]["p99"] for r, f in pairs])
                qps_ratio = _median([r[1] / f[1] for r, f in pairs])
                if target == "sdk":
                    sdk_verdicts.append(
                        f"{n} x 10, {load}: p99 {p99_ratio:.2f}x the echo's (per round: "
                        + ", ".join(f"{r[0]['p99'] / f[0]['p99']:.2f}x" for r, f in pairs)
                        + f"): {'met' if p99_ratio <= TARGET_SDK_P99 else 'MISSED'}"
                    )
                else:
                    met = p99_ratio <= TARGET_P99 and qps_ratio >= TARGET_QPS
                    verdicts.append(
                        f"{labels[target]}, {n} x 10, {load}: p99 {p99_ratio:.2f}x the echo's, "
                        f"QPS {qps_ratio:.0%} of the echo's: {'met' if met else 'MISSED'}"
                    )
            else:
                p99_ratio, qps_ratio = pct["p99"] / floor[0]["p99"], qps / floor[1]
            ratio = f"{p99_ratio:.2f}x / {qps_ratio:.0%}"
        rows.append([labels[target], f"{n} x 10", load, pct["p50"], pct["p99"], qps, ratio])
    cpu_rows: list[list[object]] = [
        [labels[t], f"{n} x 10", load, _median([c[0] for c in v]), _median([c[1] for c in v])]
        for (t, n, load), v in sorted(
            cpu.items(), key=lambda item: (order[item[0][0]], item[0][1], item[0][2][0] != "1")
        )
    ]
    ours_vs_feast = []
    for n in (1, 100):
        for load, _, _ in loads:
            ours = results[("ours", n, load)]
            server = results[("feast-server", n, load)]
            local = results[("feast", n, load)]
            ours_vs_feast.append(
                f"{n} x 10, {load}: ours p50 / Feast server p50 = "
                f"{ours[0]['p50'] / server[0]['p50']:.2f}x, QPS {ours[1] / server[1]:.1f}x; "
                f"ours p50 / Feast in-process p50 = {ours[0]['p50'] / local[0]['p50']:.2f}x"
            )
    cluster_vs_single = []
    for cluster_target, single_target in (
        ("cluster", "ours"),
        ("cluster-uncached", "ours-uncached"),
    ):
        for n in (1, 100):
            for load, _, _ in loads:
                pairs = list(
                    zip(
                        samples[(cluster_target, n, load)],
                        samples[(single_target, n, load)],
                        strict=True,
                    )
                )
                p50 = _median([c[0]["p50"] / r[0]["p50"] for c, r in pairs])
                p99 = _median([c[0]["p99"] / r[0]["p99"] for c, r in pairs])
                qps = _median([c[1] / r[1] for c, r in pairs])
                (c50, c99), (s50, s99) = (
                    (results[(t, n, load)][0]["p50"], results[(t, n, load)][0]["p99"])
                    for t in (cluster_target, single_target)
                )
                cluster_vs_single.append(
                    f"{labels[cluster_target]} vs single Redis, {n} x 10, {load}: p50 {c50:.3f} / "
                    f"{s50:.3f} ms ({p50:.2f}x), p99 {c99:.3f} / {s99:.3f} ms ({p99:.2f}x), "
                    f"QPS {qps:.0%} of single Redis'"
                )
    sizes = ", ".join(
        f"{n} x 10: request {len(_request(n))} B, response {response_sizes[n]} B" for n in (1, 100)
    )
    return "\n\n".join(
        [
            "## Online features (GetOnlineFeatures)",
            doc_paragraph(__doc__, 1),
            markdown_table(
                [
                    "what",
                    "entities x features",
                    "load",
                    "p50 ms",
                    "p99 ms",
                    "QPS",
                    "p99 / echo, QPS / echo",
                ],
                rows,
            ),
            f"Messages: {sizes}.",
            "CPU per call, from the processes' CPU time over each measurement (medians of the "
            "rounds; the Redis column includes the writer's writes where rows are rewritten). "
            "On 2 shared cores this is steadier than latency:\n\n"
            + markdown_table(
                ["what", "entities x features", "load", "server µs/call", "Redis µs/call"],
                cpu_rows,
            ),
            f"Load average (1 min) at the start / end of this section: {load_at_start:.2f} / "
            f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, shared with other work.",
            "Redis Cluster vs single Redis (same rows, same rounds; medians of the rounds, ratios "
            "per round):\n\n" + "\n".join(f"- {line}" for line in cluster_vs_single),
            "Ours vs Feast (same Redis rows, same run):\n\n"
            + "\n".join(f"- {line}" for line in ours_vs_feast),
            "Target (issue 6): p99 within 1.3x of the echo's and a one-process QPS of at least "
            "75% of the echo's (per-round ratios, median of the rounds):\n\n"
            + "\n".join(f"- {line}" for line in verdicts),
            "Target (issue 18): the Python SDK end to end (the request written, the call, the "
            "response decoded into NumPy columns) within 1.5x the raw echo's p99 at 100 x 10, in "
            "the same rounds (1 x 10 for reference):\n\n"
            + "\n".join(f"- {line}" for line in sdk_verdicts),
            go_section,
        ]
    )


def _go_section(
    echo_port: int,
    echo_pid: int,
    ours_port: int,
    ours_pid: int,
    uncached_port: int,
    uncached_pid: int,
    response_sizes: dict[int, int],
    results: dict[tuple[str, int, str], tuple[dict[str, float], float]],
) -> str:
    """The Go generator's section (bench/online_load.py); its failure is reported, not raised,
    so that the rest of the section still comes out."""
    try:
        return online_load.measure(
            [
                online_load.Target("echo", echo_port, ECHO, echo_pid),
                online_load.Target("ours", ours_port, METHOD, ours_pid),
                online_load.Target("ours-uncached", uncached_port, METHOD, uncached_pid),
            ],
            {n: _request(n) for n in (1, 100)},
            response_sizes,
            ROUNDS,
            {
                (t, n): results[(t, n, f"{THREADS} threads")][1]
                for t in ("echo", "ours")
                for n in (1, 100)
            },
        )
    except Exception:  # a failed part is reported; the rest of the section stands
        title = "## Load from the Go generator (bench/loadgen)"
        return f"{title}\n\nFAILED:\n\n```\n{traceback.format_exc()}```"


def _run_on_server_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run on the event loop the service is configured with (the echo too: same floor)."""
    from featurestore.service import new_event_loop

    kind = load_settings().service.event_loop
    with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as runner:
        runner.run(main())


def _serve_features(project: str) -> None:
    from featurestore.service import create_server

    async def main() -> None:
        base = load_settings()
        settings = base.model_copy(update={"grpc": GrpcSettings(port=0)})
        handle, port = await create_server(settings, market_catalog(project))
        await handle.start()
        print(port, flush=True)
        await handle.wait_for_termination()

    _run_on_server_loop(main)


def _serve_echo() -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        size = int(dict(context.invocation_metadata()).get("x-response-size", "0"))
        return _PAYLOADS.setdefault(size, b"\x01" * size)

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("bench.Echo", {"Call": handler})]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    _run_on_server_loop(main)


def _write_rows_loop(project: str) -> None:
    """Rewrite every row every WRITE_EVERY_S while switched on (SIGUSR1 on, SIGUSR2 off)."""
    writer = RedisOnlineWriter.from_settings(load_settings().redis, market_catalog(project))
    active = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: active.set())
    signal.signal(signal.SIGUSR2, lambda *_: active.clear())
    print(0, flush=True)
    while True:
        if not active.wait(0.05):
            continue
        started = time.monotonic()
        writer.write(_rows(datetime.now(UTC)))
        time.sleep(max(0.0, WRITE_EVERY_S - (time.monotonic() - started)))


_PAYLOADS: dict[int, bytes] = {}

if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-features"]:
        _serve_features(sys.argv[2])
    elif sys.argv[1:2] == ["serve-echo"]:
        _serve_echo()
    elif sys.argv[1:2] == ["write-rows"]:
        _write_rows_loop(sys.argv[2])
    else:
        print(run(load_settings()))
