"""Processors: sustained throughput on a backlog, and freshness at a steady 5,000 events/s.

Throughput: 500,000 synthetic trades (50 symbols) wait in a fresh topic; the streaming job
(in this process, ``local[*]``) reads them from offset 0 in micro-batches of 100,000 and writes
both views to PostgreSQL and the latest rows to Redis. Beside it, on the same records: the
floors of the Python work per record without Spark (decode alone; the whole per-partition step:
decode + state machine + Arrow rows), and where each batch's time went.

Freshness: the processor runs as its own process (``featurestore processors run``, trigger 0);
this process produces trades at a steady 5,000/s for 60 s with event time = produce time, and
polls Redis every ~5 ms for each symbol's latest ``bars_1m`` event time. A trade is readable
once a row at its event time or later is in Redis; freshness = that moment - its produce time.

Engines (``python -m bench.bench_processors engines``): the Spark and the Kafka engine side by
side in one run, alternating freshness runs and then each one's throughput on the same backlog.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import psycopg
import redis
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from bench.stats import markdown_table
from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import Trade
from featurestore.heap import freeze_startup_heap
from featurestore.ingest.kafka import producer_config
from featurestore.kafka_connection import create_client
from featurestore.online.base import EntityKey
from featurestore.online.layout import decode_timestamp
from featurestore.online.layout import redis_key
from featurestore.online.layout import timestamp_field
from featurestore.online.testing import delete_project_keys
from featurestore.processor_files import processor_dir
from featurestore.processor_files import processor_log
from featurestore.processor_files import ready_file
from featurestore.processor_files import status_file
from featurestore.stack.process import stop_group
from featurestore.stack.processors import start_processor
from processors.decode import KafkaRecords
from processors.decode import decode_records
from processors.decode import decoder_for
from processors.options import ProcessorOptions
from processors.status import read_status
from processors.step import PartitionState
from processors.step import run_step
from processors.views import MaterializedViews
from processors.wiring import ProcessorWiring

BACKLOG = 500_000
BACKFILL_EVENTS = 5_000_000
SYMBOLS = 50
BATCH = 100_000
FRESH_RATE = 5_000
FRESH_SECONDS = 60
MARKET_VIEWS = ("bars_1m", "rolling_1m")
"""The views of ``views=2``: those the hand-written processor (61103a6) computed."""


def _definitions(
    settings: Settings, run: str, label: str, topic: str, views: int = 2
) -> Definitions:
    """The market views (bars_1m, rolling_1m) and ``views - 2`` more like rolling_1m.

    The extra views are rolling_1m with every window k + 1 times longer (k = 1, 2, ...): as
    much maths per view as the real one, so that ten views cost what ten declared views do.
    """
    defs = market_definitions(
        f"bench_{label}_{run}", table_prefix=f"bench_{run}_{label}_", source_topic=topic
    )
    # The two views the hand-written processor computed; the rollup views are not counted.
    defs = replace(
        defs,
        views=tuple(v for v in defs.views if v.name in MARKET_VIEWS),
        services=tuple(s for s in defs.services if all(r.view in MARKET_VIEWS for r in s.features)),
    )
    rolling = defs.view("rolling_1m")
    assert rolling.stream is not None
    extra = []
    for k in range(1, views - 1):
        aggregations = tuple(
            replace(a, window=a.window * (k + 1)) for a in rolling.stream.aggregations
        )
        extra.append(
            replace(
                rolling,
                name=f"rolling_1m_x{k + 1}",
                source=replace(rolling.source, table=f"{rolling.source.table}_x{k + 1}"),
                stream=replace(rolling.stream, aggregations=aggregations),
            )
        )
    defs = replace(defs, views=(*defs.views, *extra))
    # Apply refuses a topic without a schema: register the trade schema, as a producer would.
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        AvroSerializer.for_topic(store, topic, Trade)
    apply_definitions(settings, defs)
    return defs


def _cleanup(settings: Settings, defs: list[Definitions], names: list[str], run: str) -> None:
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        for d in defs:
            for view in d.views:
                conn.execute(f'DROP TABLE IF EXISTS "{view.source.table}" CASCADE')
    delete_project_keys(settings.redis, *(d.project for d in defs))
    for name in names:
        shutil.rmtree(processor_dir(settings, name), ignore_errors=True)
    admin = create_client(AdminClient, settings.kafka.connection.admin())
    topics = [t for t in admin.list_topics(timeout=10).topics if t.endswith(run)]
    topics = [t for t in topics if t.startswith("bench-proc-")]
    if topics:
        for future in admin.delete_topics(topics).values():
            future.result()


def _ingest_backlog(settings: Settings, topic: str, count: int = BACKLOG) -> None:
    subprocess.run(
        [sys.executable, "-m", "featurestore.cli", "ingest", "synthetic", "--fast",
         "--count", str(count), "--symbols", str(SYMBOLS), "--rate", "1000",
         "--start", "2024-03-04T14:30:00", "--topic", topic],
        check=True, env={**os.environ, **settings_env(settings)}, capture_output=True,
    )  # fmt: skip


def _raw_records(settings: Settings, topic: str, limit: int) -> pd.DataFrame:
    consumer = create_client(
        Consumer,
        settings.kafka.connection.consumer(
            f"b-{uuid.uuid4().hex}", **{"enable.auto.commit": False}
        ),
    )
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
    rows: list[dict[str, Any]] = []
    while len(rows) < limit:
        batch = consumer.consume(10_000, timeout=2.0)
        if not batch:
            break
        for m in batch:
            if m.error() is None:
                rows.append({"topic": topic, "key": m.key(), "value": m.value(),
                             "partition": m.partition(), "offset": m.offset(),
                             "timestamp_ms": m.timestamp()[1]})  # fmt: skip
    consumer.close()
    return pd.DataFrame(rows[:limit])


def _floors(
    settings: Settings, records: pd.DataFrame, defs: Definitions, topic: str
) -> list[list[object]]:
    """Decode, and the whole step, per partition: one Python thread, no Spark, no stores."""
    views = MaterializedViews.resolve(defs, topic)
    decoder = decoder_for(settings.schema_registry, views.plan.source)
    parts = [
        KafkaRecords.of(list(g["key"]), list(g["value"]), g["partition"], g["offset"],
                        g["timestamp_ms"])
        for _, g in records.groupby("partition")
    ]  # fmt: skip
    began = time.perf_counter()
    for part in parts:
        decode_records(part, decoder, views.plan.source)
    decode_s = time.perf_counter() - began
    began = time.perf_counter()
    for part in parts:
        states = {name: PartitionState() for name in views.plans}
        run_step(part, states, decoder, views.plans, views.plan.source)
    step_s = time.perf_counter() - began
    n = len(records)
    return [
        ["decode only (fastavro, writer schema -> the definitions' fields)", n, n / decode_s],
        [f"step: decode + feature engine ({len(views.plans)} views) + Arrow rows", n, n / step_s],
    ]


def _throughput(
    settings: Settings, run: str, views: int = 2
) -> tuple[str, list[Definitions], list[str]]:
    from processors.spark import start_stream

    topic = f"bench-proc-backlog-{run}"
    if views == 2:
        _ingest_backlog(settings, topic)
    defs = _definitions(settings, run, f"tp{views}", topic, views)
    options = ProcessorOptions(
        name=f"bench-tp{views}-{run}", project=defs.project, topic=topic,
        max_offsets_per_trigger=BATCH,
    )  # fmt: skip
    floors = _floors(settings, _raw_records(settings, topic, 200_000), defs, topic)
    load_before = os.getloadavg()[0]
    handle = start_stream(settings, options, ProcessorWiring(defs))
    started = time.perf_counter()
    marks: list[tuple[float, int]] = []
    try:
        while handle.totals.get("records", 0) < BACKLOG:
            if not handle.query.isActive:
                raise RuntimeError(f"stream stopped: {handle.query.exception()}")
            count = handle.totals.get("records", 0)
            if not marks or marks[-1][1] != count:
                marks.append((time.perf_counter(), count))
            time.sleep(0.02)
        marks.append((time.perf_counter(), handle.totals["records"]))
    finally:
        handle.stop()
    total_s = marks[-1][0] - started
    first = next(m for m in marks if m[1] > 0)
    steady = (marks[-1][1] - first[1]) / (marks[-1][0] - first[0])
    reports = handle.reports
    parts: dict[str, float] = defaultdict(float)
    for report in reports:
        for name, seconds in report.seconds.items():
            parts[name] += seconds
    rows_written = sum(r.rows for r in reports)
    table = markdown_table(
        ["path", "records", "events/s"],
        [
            *floors,
            ["stream, whole backlog (first batch included)", BACKLOG,
             BACKLOG / total_s],
            ["stream, sustained (after the first batch)", marks[-1][1] - first[1], steady],
        ],
    )  # fmt: skip
    breakdown = markdown_table(
        ["part of the batches", "seconds (sum over batches)", "share of wall time"],
        [[name, s, f"{100 * s / total_s:.0f} %"] for name, s in parts.items()],
    )
    text = (
        f"## Throughput, {len(defs.views)} views: a backlog of {BACKLOG:,} synthetic trades"
        f" ({SYMBOLS} symbols)\n\n"
        f"{len(reports)} micro-batches of up to {BATCH:,} records, `local[*]` on this machine, "
        f"{rows_written:,} feature rows written to PostgreSQL. Floors on 200,000 of the same "
        f"records in one Python thread.\n\n{table}\n\n"
        f"Where the stream's time went. Parts overlap, so shares add up to more than 100 %: "
        f"Spark reads a batch (`toArrow`) while the previous one is processed, and the "
        f"`(tasks)` parts are summed over the partitions' threads, which share the GIL and the "
        f'2 cores. "waiting for the previous batch" is the read batch\'s wait for the '
        f"processing of the one before:\n\n{breakdown}\n\n"
        f"Target >= 50,000 events/s sustained: {'met' if steady >= 50_000 else 'missed'} "
        f"({steady:,.0f}). Load average (1 min) {load_before:.1f} before the stream, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores.\n"
    )
    return text, [defs], [options.name]


def _producer_loop(
    settings: Settings,
    topic: str,
    produced: dict[str, list[int]],
    stop: threading.Event,
    prefix: str,
) -> float:
    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    serializer = AvroSerializer.for_topic(store, topic, Trade)
    producer = create_client(
        Producer,
        settings.kafka.connection.producer(
            **{"linger.ms": 2, "acks": "all", "enable.idempotence": True}
        ),
    )
    symbols = [f"F{i:03d}" for i in range(SYMBOLS)]
    rng = np.random.default_rng(1)
    prices = dict.fromkeys(symbols, 100.0)
    tick_s, per_tick = 0.01, FRESH_RATE // 100
    began = time.perf_counter()
    n = 0
    next_tick = began
    while time.perf_counter() - began < FRESH_SECONDS and not stop.is_set():
        # A tick's random draws at once: the harness shares the 2 cores with what it measures.
        picks = rng.integers(SYMBOLS, size=per_tick).tolist()
        moves = (1 + rng.normal(0, 0.0005, per_tick)).tolist()
        for pick, move in zip(picks, moves, strict=True):
            symbol = symbols[pick]
            prices[symbol] *= move
            now_us = time.time_ns() // 1000
            trade = Trade(symbol, round(prices[symbol], 4), 100, datetime.fromtimestamp(
                now_us / 1e6, UTC), "Q", f"{prefix}-{n}")  # fmt: skip
            value = serializer.encode(trade)
            producer.produce(topic, value, symbol.encode(), timestamp=now_us // 1000)
            produced[symbol].append(int(trade.event_time.timestamp() * 1_000_000))
            n += 1
        producer.poll(0)
        next_tick += tick_s
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    producer.flush(30)
    return n / (time.perf_counter() - began)


_READ_FIELD_OF_KEYS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGET', key, ARGV[1]) end
return out
"""
"""One hash field of many keys in one round trip (a missing one is nil)."""


def _poll_redis(
    settings: Settings, project: str, seen: dict[str, list[tuple[int, float]]],
    stop: threading.Event,
) -> None:  # fmt: skip
    client = redis.Redis(
        host=settings.redis.host,
        port=settings.redis.port,
        db=settings.redis.db,
        **settings.redis.client_kwargs(),
    )
    symbols = [f"F{i:03d}" for i in range(SYMBOLS)]
    keys = [redis_key(EntityKey.of(symbol=s), project) for s in symbols]
    field = timestamp_field("bars_1m")
    # Every symbol's field in one command, and a value decoded only when it changed: the
    # poller shares the 2 cores with what it measures (50 HGETs through redis-py's pipeline,
    # every value decoded, took ~20 % of a core).
    read_all = client.register_script(_READ_FIELD_OF_KEYS)
    last: list[bytes | None] = [None] * len(keys)
    while not stop.is_set():
        replies = read_all(keys=keys, args=[field])
        now = time.time()
        for i, raw in enumerate(replies):
            if raw is None or raw == last[i]:
                continue
            last[i] = raw
            ts = int(decode_timestamp(raw).timestamp() * 1_000_000)
            seen[symbols[i]].append((ts, now))
        time.sleep(0.005)
    client.close()


@dataclass
class _Fresh:
    """One freshness run: produce -> Redis percentiles and what surrounded them."""

    engine: str
    trades: int
    rate: float
    pct: dict[str, float]
    max_ms: float
    missing: int
    load_before: float
    load_after: float


def _measure_freshness(
    settings: Settings,
    run: str,
    label: str,
    master: str,
    engine: str,
    views: int = 2,
    processes: int = 1,
) -> tuple[_Fresh, Definitions, list[str]]:
    """Processors on a fresh topic: 15 s of warm-up, then FRESH_SECONDS measured.

    ``processes``: applications splitting the topic's 4 partitions between them (disjoint
    ``--partitions``), each its own process (and its own share of the machine's cores).
    """
    topic = f"bench-proc-fresh-{label}-{run}"
    defs = _definitions(settings, run, label, topic, views)
    base = f"bench-{label}-{run}"
    names = [base] if processes == 1 else [f"{base}-{k}" for k in range(processes)]
    from featurestore.ingest import wait_for_brokers
    from featurestore.topics import TopicSpec
    from featurestore.topics import ensure_topics

    ensure_topics(wait_for_brokers(settings.kafka.connection), [TopicSpec(topic, 4)])
    procs: list[subprocess.Popen[bytes]] = []
    shares = ["-".join(str(p) for p in range(4) if p % processes == k) for k in range(processes)]
    for name, share in zip(names, shares, strict=True):
        procs.append(start_processor(
            settings, name, defs.project, topic, "--trigger-ms", "0", "--master", master,
            "--engine", engine,
            *(["--partitions", share.replace("-", ",")] if processes > 1 else []),
        ))  # fmt: skip
    produced: dict[str, list[int]] = defaultdict(list)
    seen: dict[str, list[tuple[int, float]]] = defaultdict(list)
    try:
        deadline = time.monotonic() + (420 if master != "local[*]" else 180)
        for name, proc in zip(names, procs, strict=True):
            while not ready_file(settings, name).exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = processor_log(settings, name)
                    raise RuntimeError(f"the processor did not start; see {log}")
                time.sleep(0.5)
        # Warm up: Python workers start on the first batches.
        warm: dict[str, list[int]] = defaultdict(list)
        stop = threading.Event()
        warm_thread = threading.Thread(
            target=_producer_loop, args=(settings, topic, warm, stop, "warm")
        )
        warm_thread.start()
        time.sleep(15)
        stop.set()
        warm_thread.join()
        # The warm-up's records stored (a loaded machine can take minutes for Spark's first
        # batch), then 5 s for the engine to go back to waiting for records.
        deadline = time.monotonic() + 300
        for name, proc, share in zip(names, procs, shares, strict=True):
            # The kafka engine's status file: one per application when it has --partitions.
            status = status_file(settings, name, None if processes == 1 else f"{name}-p{share}")
            while (read_status(status) or {}).get("totals", {}).get("records", 0) < 1:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} stored nothing of the warm-up; see its log")
                time.sleep(0.5)
        time.sleep(5)
        freeze_startup_heap()  # the harness's own full collections would delay what it sees
        stop = threading.Event()
        load_before = os.getloadavg()[0]
        poller = threading.Thread(target=_poll_redis, args=(settings, defs.project, seen, stop))
        poller.start()
        rate = _producer_loop(settings, topic, produced, threading.Event(), "f")
        time.sleep(5)
        stop.set()
        poller.join()
    finally:
        for proc in procs:
            stop_group(proc)
    latencies: list[float] = []
    missing = 0
    for symbol, events in produced.items():
        obs = seen.get(symbol, [])
        ts = np.array([o[0] for o in obs], dtype=np.int64)
        at = np.array([o[1] for o in obs])
        for event_us in events:
            i = int(np.searchsorted(ts, event_us, side="left"))
            if i >= len(ts):
                missing += 1
                continue
            latencies.append(at[i] - event_us / 1e6)
    # A trade never seen in Redis counts as infinitely late: a run that fell behind shows it.
    late = np.array([*latencies, *[np.inf] * missing]) * 1000.0
    pct = {f"p{q}": float(np.percentile(late, q, method="higher")) for q in (50, 90, 99)}
    fresh = _Fresh(
        engine, len(late), rate, pct, float(late.max()), missing, load_before,
        os.getloadavg()[0],
    )  # fmt: skip
    return fresh, defs, names


def _freshness(
    settings: Settings, run: str, on_cluster: bool = False
) -> tuple[str, list[Definitions], list[str]]:
    """Freshness of the Spark engine in local mode, or on the 2-worker cluster's executors."""
    label = "frc" if on_cluster else "fr"
    master = settings.spark_cluster.master_url if on_cluster else "local[*]"
    cluster_started: list[Any] = []
    if on_cluster:
        from featurestore.stack.spark_cluster import SparkCluster

        cluster = SparkCluster(settings)
        started = cluster.up()
        cluster_started = [d for d in reversed(cluster.components) if d.name in started]
    try:
        fresh, defs, names = _measure_freshness(settings, run, label, master, "spark")
    finally:
        for daemon in cluster_started:
            daemon.stop()
    pct = fresh.pct
    table = markdown_table(
        ["trades", "produce rate /s", "p50 ms", "p90 ms", "p99 ms", "max ms", "never seen"],
        [[fresh.trades, fresh.rate, pct["p50"], pct["p90"], pct["p99"], fresh.max_ms,
          fresh.missing]],
    )  # fmt: skip
    where = "in the executors' tasks" if on_cluster else "in the driver's threads"
    text = (
        f"## Freshness at a steady {FRESH_RATE:,} trades/s for {FRESH_SECONDS} s "
        f"({SYMBOLS} symbols), {'the 2-worker cluster' if on_cluster else 'local mode'}\n\n"
        "Produce time -> the trade's bars_1m row (or a later one) readable in Redis; the "
        "processor runs as `featurestore processors run --engine spark --trigger-ms 0 --master "
        f"{master}` in its own process (the step "
        f"{where}), "
        "after a 15 s warm-up at the same rate. Includes the producer's linger (2 ms) and the "
        f"~5 ms Redis poll.\n\n{table}\n\n"
        f"Target p99 <= 250 ms: {'met' if pct['p99'] <= 250 else 'missed'} ({pct['p99']:,.0f} ms)."
        f" Load average (1 min) {fresh.load_before:.1f} before, {fresh.load_after:.1f} at the "
        f"end, on {os.cpu_count()} cores.\n"
    )
    return text, [defs], names


ENGINE_ROUNDS = 2
"""Freshness runs of each engine in the engines section (alternating), medians reported."""
ENGINE_BACKLOG = 200_000
"""Trades of the engines section's throughput backlog."""


def _engines(settings: Settings, run: str) -> tuple[str, list[Definitions], list[str]]:
    """Both engines side by side in local mode: freshness (alternating runs) and throughput."""
    runs: list[_Fresh] = []
    defs: list[Definitions] = []
    names: list[str] = []
    for k in range(ENGINE_ROUNDS):
        for engine in ("spark", "kafka"):
            fresh, d, fresh_names = _measure_freshness(
                settings, run, f"fe{engine[0]}{k}", "local[*]", engine
            )
            runs.append(fresh)
            defs.append(d)
            names += fresh_names
    topic = f"bench-proc-engines-{run}"
    _produce_trades(settings, topic, ENGINE_BACKLOG)
    throughput: dict[str, list[object]] = {}
    for engine in ("spark", "kafka"):
        row, d, name = _on_master(
            settings, run, topic, f"et{engine[0]}", "local[*]", [], engine=engine,
            backlog=ENGINE_BACKLOG,
        )  # fmt: skip
        throughput[engine] = row
        defs.append(d)
        names.append(name)
    rows = [
        [f.engine, i // 2 + 1, f.trades, f.rate, f.pct["p50"], f.pct["p90"], f.pct["p99"],
         f.max_ms, f.missing, f"{f.load_before:.1f} / {f.load_after:.1f}"]
        for i, f in enumerate(runs)
    ]  # fmt: skip
    medians = []
    for engine in ("spark", "kafka"):
        mine = [f for f in runs if f.engine == engine]
        medians.append(
            [engine, *(float(np.median([f.pct[p] for f in mine])) for p in ("p50", "p90", "p99")),
             throughput[engine][2],
             float(np.median([f.load_before for f in mine]))]
        )  # fmt: skip
    kafka_p99 = float(np.median([f.pct["p99"] for f in runs if f.engine == "kafka"]))
    runs_table = markdown_table(
        ["engine", "round", "trades", "produce rate /s", "p50 ms", "p90 ms", "p99 ms", "max ms",
         "never seen", "load avg before / after"],
        rows,
    )  # fmt: skip
    median_table = markdown_table(
        ["engine", "median p50 ms", "median p90 ms", "median p99 ms",
         f"events/s on a {ENGINE_BACKLOG:,} backlog", "median load avg"],
        medians,
    )  # fmt: skip
    text = (
        f"## The two engines side by side, local mode: freshness at {FRESH_RATE:,} trades/s "
        f"and throughput\n\n"
        "`featurestore processors run --engine spark|kafka` in its own process, the same "
        f"definitions ({len(defs[0].views)} views: "
        f"{', '.join(v.name for v in defs[0].views)}), {ENGINE_ROUNDS} freshness runs of each, "
        "alternating on the same "
        f"machine (each: a fresh 4-partition topic, 15 s warm-up, {FRESH_SECONDS} s measured: "
        "produce time -> the trade's bars_1m row or a later one readable in Redis, polled every "
        "~5 ms; includes the producer's 2 ms linger). Throughput: the same processor process "
        f"on a backlog of {ENGINE_BACKLOG:,} trades (50 symbols), events/s after its first "
        f"batch.\n\n{runs_table}\n\nMedians:\n\n{median_table}\n\n"
        f"Target p99 <= 250 ms (kafka engine, median): "
        f"{'met' if kafka_p99 <= 250 else 'missed'} ({kafka_p99:,.0f} ms). Load average (1 min) "
        f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores.\n"
    )
    return text, defs, names


RECORD_FRESHNESS = (("kafka", 2), ("spark", 2), ("kafka", 10), ("kafka", 2), ("spark", 10),
                    ("kafka", 2))  # fmt: skip
"""The record section's freshness runs (engine, views), in this order."""


def _record(settings: Settings, run: str) -> tuple[str, list[Definitions], list[str]]:
    """The bench of record: both engines, 2 and 10 views, throughput and freshness, one run.

    Throughput: each engine's processor process on one backlog of BACKLOG trades; freshness:
    RECORD_FRESHNESS, each a fresh topic at FRESH_RATE. The hand-written processor this one
    replaced is measured beside it by running 61103a6's own bench in the same window (see
    ``bench/RESULTS.md``); this section is the definition-driven side.
    """
    defs: list[Definitions] = []
    names: list[str] = []
    topic = f"bench-proc-backlog-{run}"
    _ingest_backlog(settings, topic)
    throughput = []
    for engine in ("spark", "kafka"):
        for views in (2, 10):
            row, d, name = _on_master(
                settings, run, topic, f"r{engine[0]}{views}", "local[*]", [], engine=engine,
                views=views,
            )  # fmt: skip
            throughput.append([engine, views, row[1], row[2], row[3]])
            defs.append(d)
            names.append(name)
    runs: list[tuple[int, _Fresh]] = []
    for k, (engine, views) in enumerate(RECORD_FRESHNESS):
        fresh, d, fresh_names = _measure_freshness(
            settings, run, f"rf{engine[0]}{views}x{k}", "local[*]", engine, views
        )
        runs.append((views, fresh))
        defs.append(d)
        names += fresh_names
    tp_table = markdown_table(
        ["engine", "views", "records (after the first batch)", "events/s sustained",
         "processor CPU us/event"],
        throughput,
    )  # fmt: skip
    fr_table = markdown_table(
        ["engine", "views", "trades", "produce rate /s", "p50 ms", "p90 ms", "p99 ms", "max ms",
         "never seen", "load avg before / after"],
        [[f.engine, v, f.trades, f.rate, f.pct["p50"], f.pct["p90"], f.pct["p99"], f.max_ms,
          f.missing, f"{f.load_before:.1f} / {f.load_after:.1f}"] for v, f in runs],
    )  # fmt: skip
    kafka2 = [f.pct["p99"] for v, f in runs if v == 2 and f.engine == "kafka"]
    text = (
        "## Bench of record: both engines, 2 and 10 views\n\n"
        f"Throughput: `featurestore processors run --engine E --max-offsets {BATCH:,}` in its "
        f"own process on one backlog of {BACKLOG:,} synthetic trades ({SYMBOLS} symbols), "
        "events/s and the process tree's CPU after its first batch. 2 views = bars_1m and "
        "rolling_1m (what the hand-written processor computed); 10 views = those and 8 more "
        "like rolling_1m with longer windows.\n\n"
        f"{tp_table}\n\n"
        f"Freshness at a steady {FRESH_RATE:,} trades/s for {FRESH_SECONDS} s after a 15 s "
        "warm-up, each run a fresh 4-partition topic, `--trigger-ms 0`: produce time -> the "
        "trade's bars_1m row (or a later one) readable in Redis, polled every ~5 ms.\n\n"
        f"{fr_table}\n\n"
        f"Target p99 <= 250 ms (Kafka engine, 2 views): {len(kafka2)} runs, p99 "
        f"{', '.join(f'{p:,.0f}' for p in kafka2)} ms, median "
        f"{float(np.median(kafka2)):,.0f} ms. Load average (1 min) {os.getloadavg()[0]:.1f} at "
        f"the end, on {os.cpu_count()} cores.\n"
    )
    return text, defs, names


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of processes (those gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _driver_parts(pids: list[int]) -> dict[str, float]:
    """CPU seconds of a driver's process tree by part, from each thread's ``/proc`` stat.

    JVM threads are told apart by name: the JIT compilers (``C1/C2 CompilerThread``), Spark's
    listener bus (``spark-listener-group-*``: the status store, the query listener's calls
    into Python), the query's micro-batch loop (``stream execution thread``); Python is the
    driver's Python process.
    """
    tick = os.sysconf("SC_CLK_TCK")
    parts: dict[str, float] = defaultdict(float)
    for pid in pids:
        try:
            java = Path(f"/proc/{pid}/exe").resolve().name.startswith("java")
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick
            if not java:
                parts["Python"] += seconds
            elif "CompilerThre" in name:
                parts["JVM JIT compilers"] += seconds
            elif name.startswith("spark-listener"):
                parts["JVM listener bus"] += seconds
            elif name.startswith("stream executio"):
                parts["JVM stream execution"] += seconds
            else:
                parts["JVM other"] += seconds
    return parts


def _tree(root: int) -> list[int]:
    """``root`` and its descendants."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _on_master(
    settings: Settings,
    run: str,
    topic: str,
    label: str,
    master: str,
    workers: list[int],
    *,
    engine: str = "spark",
    backlog: int = BACKLOG,
    views: int = 2,
) -> tuple[list[object], Definitions, str]:
    """The backlog through a processor process on ``master``: its events/s and CPU per event.

    ``workers``: the cluster's worker PIDs; their trees (executors, Python workers) are read
    when the CPU is sampled, while the application runs.
    """
    defs = _definitions(settings, run, label, topic, views)
    name = f"bench-{label}-{run}"
    log = processor_log(settings, name)
    status = status_file(settings, name)
    proc = start_processor(
        settings, name, defs.project, topic, "--master", master, "--max-offsets", str(BATCH),
        "--engine", engine,
    )  # fmt: skip
    try:
        first: tuple[float, int, float, float, dict[str, float]] | None = None
        deadline = time.monotonic() + 900
        records = 0
        while records < backlog:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the processor on {master} stopped or stalled; see {log}")
            doc = read_status(status) or {}
            records = int(doc.get("totals", {}).get("records", 0))
            if first is None and records:
                driver = _cpu_s(_tree(proc.pid))
                executors = _cpu_s([p for w in workers for p in _tree(w)])
                parts = _driver_parts(_tree(proc.pid))
                first = (time.perf_counter(), records, driver, executors, parts)
            time.sleep(0.1)
        end = time.perf_counter()
        driver_s = _cpu_s(_tree(proc.pid))
        executors_s = _cpu_s([p for w in workers for p in _tree(w)])
        parts_end = _driver_parts(_tree(proc.pid))
    finally:
        stop_group(proc)
    assert first is not None
    n = records - first[1]
    per_event = {k: 1e6 * (v - first[4].get(k, 0.0)) / n for k, v in parts_end.items()}
    row: list[object] = [
        master,
        n,
        n / (end - first[0]),
        1e6 * (driver_s - first[2]) / n,
        1e6 * (executors_s - first[3]) / n,
        ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_event.items(), key=lambda kv: -kv[1])),
    ]
    return row, defs, name


def _cluster(settings: Settings, run: str) -> tuple[str, list[Definitions], list[str]]:
    """Local mode (the step on the driver) against the 2-worker cluster (on the executors)."""
    from featurestore.stack.spark_cluster import SparkCluster

    topic = f"bench-proc-backlog-{run}"
    cluster = SparkCluster(settings)
    started = cluster.up()
    defs: list[Definitions] = []
    names: list[str] = []
    try:
        workers = [pid for pid in (w.process.pid() for w in cluster.workers) if pid]
        rows = []
        for label, master in (("lm", "local[*]"), ("cl", settings.spark_cluster.master_url)):
            row, d, name = _on_master(settings, run, topic, label, master, workers)
            rows.append(row)
            defs.append(d)
            names.append(name)
    finally:
        for daemon in reversed(cluster.components):
            if daemon.name in started:
                daemon.stop()
    table = markdown_table(
        ["master", "records (after the first batch)", "events/s", "driver CPU us/event",
         "executors CPU us/event", "driver CPU us/event by part"],
        rows,
    )  # fmt: skip
    text = (
        f"## Local mode and a 2-worker cluster, the same backlog ({BACKLOG:,} trades, 2 views)\n\n"
        "`featurestore processors run` as its own process, once with `local[*]` (the step in "
        "the driver's threads) and once with `--master spark://...` on the standalone cluster "
        f"of `featurestore cluster up` ({settings.spark_cluster.workers} workers x "
        f"{settings.spark_cluster.worker_cores} core, same machine): the step in the executors' "
        "tasks. CPU per event of the driver (the processor's process tree: Python and Spark's "
        "JVM) and of the workers' trees (worker, executor JVMs, Python workers), from `/proc`, "
        f"after the first batch.\n\n{table}\n\n"
        "On this machine's 2 cores the cluster cannot be faster: its executors share the cores "
        "with the driver, PostgreSQL and Kafka. What the figures show is where the work goes: "
        "on the cluster the executors carry the step and the driver keeps Spark's scheduling, "
        "the Kafka offsets and each batch's bookkeeping; with more workers (cores) the step's "
        "throughput grows with them, one task per Kafka partition and batch. The driver's part "
        "by thread says what is left on the cluster: the young JVM's JIT compilers (a start-up "
        "cost, not a cost per event), the listener bus and the micro-batch loop (a cost per "
        "batch, whatever its size) and the driver's Python (the batch's planning call and the "
        "summaries). "
        f"Load average (1 min) {os.getloadavg()[0]:.1f} at the end.\n"
    )
    return text, defs, names


def _zigzag_varints(values: np.ndarray, width: int) -> np.ndarray:
    """Avro longs (zigzag varints) of ``values`` that all take ``width`` bytes: (n, width)."""
    z = (values.astype(np.int64) << 1) ^ (values.astype(np.int64) >> 63)
    out = np.empty((len(values), width), dtype=np.uint8)
    for k in range(width):
        out[:, k] = ((z >> (7 * k)) & 0x7F).astype(np.uint8) | (0x80 if k < width - 1 else 0)
    if np.any(z >> (7 * width)) or np.any(z >> (7 * (width - 1)) == 0):
        raise ValueError(f"values do not all take {width} bytes")
    return out


def _produce_trades(settings: Settings, topic: str, count: int) -> None:
    """``count`` synthetic trades (50 symbols, 1 ms apart) into a new 4-partition topic, fast.

    Every record has the same Avro layout (4-letter symbol, 2-byte size, 8-byte time, fixed-width
    id), so the values are built as one numpy array and checked against the store's serializer
    on the first records; the ingest CLI makes ~1,000 events/s on this loaded machine.
    """
    from featurestore.ingest import wait_for_brokers
    from featurestore.topics import TopicSpec
    from featurestore.topics import ensure_topics

    ensure_topics(wait_for_brokers(settings.kafka.connection), [TopicSpec(topic, 4)])
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        serializer = AvroSerializer.for_topic(store, topic, Trade)
    rng = np.random.default_rng(7)
    start_us = int(datetime(2024, 3, 4, 14, 30, tzinfo=UTC).timestamp() * 1_000_000)
    chunk = 500_000
    producer = create_client(Producer, producer_config(settings.kafka.connection))
    prices = np.full(SYMBOLS, 100.0)
    for first in range(0, count, chunk):
        n = min(chunk, count - first)
        index = np.arange(first, first + n)
        symbol = rng.integers(0, SYMBOLS, n)
        steps = rng.normal(0, 0.0005, n)
        price = np.empty(n)
        for k in range(SYMBOLS):  # each symbol's own random walk
            mine = symbol == k
            walk = prices[k] * np.cumprod(1 + steps[mine])
            price[mine] = np.round(walk, 4)
            if walk.size:
                prices[k] = walk[-1]
        size = rng.integers(64, 8000, n)
        time_us = start_us + index * 1000
        names = np.char.add("S", np.char.zfill(symbol.astype(str), 3))
        ids = np.char.add("b", np.char.zfill(index.astype(str), 9))
        header = serializer.encode(
            Trade("S000", 1.0, 64, datetime.fromtimestamp(start_us / 1e6, UTC), "Q", "b0")
        )[:5]
        body = np.concatenate(
            [
                np.frombuffer(header, dtype=np.uint8)[None, :].repeat(n, 0),
                np.full((n, 1), 8, dtype=np.uint8),  # symbol: 4 bytes
                np.frombuffer(names.astype("S4").tobytes(), dtype=np.uint8).reshape(n, 4),
                price.astype("<f8").view(np.uint8).reshape(n, 8),
                _zigzag_varints(size, 2),
                _zigzag_varints(time_us, 8),
                np.tile(np.frombuffer(b"\x02Q\x00", dtype=np.uint8), (n, 1)),  # "Q", []
                np.full((n, 1), 20, dtype=np.uint8),  # trade_id: 10 bytes
                np.frombuffer(ids.astype("S10").tobytes(), dtype=np.uint8).reshape(n, 10),
                np.tile(np.frombuffer(b"\x06USD\x0abench", dtype=np.uint8), (n, 1)),
            ],
            axis=1,
        )
        if first == 0:  # the layout is the serializer's
            for i in range(3):
                trade = Trade(
                    str(names[i]), float(price[i]), int(size[i]),
                    datetime.fromtimestamp(int(time_us[i]) / 1e6, UTC), "Q", str(ids[i]),
                    source="bench",
                )  # fmt: skip
                if body[i].tobytes() != serializer.encode(trade):
                    raise AssertionError("the fast trade layout differs from the serializer's")
        values = [row.tobytes() for row in body]
        keys = [str(name).encode() for name in names]
        stamps = (time_us // 1000).tolist()
        for value, key, stamp in zip(values, keys, stamps, strict=True):
            while True:
                try:
                    producer.produce(topic, value, key, timestamp=stamp)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(120)


def _rss_mb(pids: list[int]) -> dict[str, float]:
    """Resident MB of the executors' JVMs and of their Python workers (the largest one)."""
    jvm = python = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            rss = proc.memory_info().rss / 2**20
            name = proc.name()
        except psutil.Error:
            continue
        if name.startswith("java"):
            jvm = max(jvm, rss)
        elif name.startswith("python"):
            python = max(python, rss)
    return {"jvm": jvm, "python": python}


def _backfill(settings: Settings, run: str) -> tuple[str, list[Definitions], list[str]]:
    """BACKFILL_EVENTS trades backfilled on the 2-worker cluster, executors' memory sampled."""
    from featurestore.stack.spark_cluster import SparkCluster

    topic = f"bench-proc-bf-{run}"
    began = time.perf_counter()
    _produce_trades(settings, topic, BACKFILL_EVENTS)
    ingest_s = time.perf_counter() - began
    defs = _definitions(settings, run, "bf", topic)
    name = f"bench-bf-{run}"
    cluster = SparkCluster(settings)
    started = cluster.up()
    samples: list[tuple[float, float, float]] = []
    try:
        workers = [pid for pid in (w.process.pid() for w in cluster.workers) if pid]
        load_before = os.getloadavg()[0]
        log = processor_log(settings, name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "featurestore.cli", "processors", "backfill", "--name",
                 name, "--project", defs.project, "--topic", topic,
                 "--master", settings.spark_cluster.master_url],
                env={**os.environ, **settings_env(settings)}, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        began = time.perf_counter()
        try:
            while proc.poll() is None:
                pids = [p for w in workers for p in _tree(w) if p != w]
                rss = _rss_mb(pids)
                samples.append((time.perf_counter() - began, rss["jvm"], rss["python"]))
                time.sleep(1.0)
        finally:
            if proc.poll() is None:
                stop_group(proc)
        took = time.perf_counter() - began
        if proc.returncode != 0:
            raise RuntimeError(f"the backfill failed; see {log}")
        summary = log.read_text().strip().splitlines()[-1]
    finally:
        for daemon in reversed(cluster.components):
            if daemon.name in started:
                daemon.stop()
    tenths = []
    for k in range(10):
        part = [s for s in samples if k * took / 10 <= s[0] < (k + 1) * took / 10]
        if part:
            tenths.append([f"{10 * k}-{10 * (k + 1)} %", max(s[1] for s in part),
                           max(s[2] for s in part)])  # fmt: skip
    table = markdown_table(
        ["part of the run (time)", "executor JVM peak RSS MB", "Python worker peak RSS MB"],
        tenths,
    )
    text = (
        f"## Backfill of {BACKFILL_EVENTS:,} trades on the 2-worker cluster\n\n"
        "`featurestore processors backfill --master spark://...` on the cluster of "
        "`featurestore cluster up` (2 workers x 1 core, same machine): one task per Kafka "
        "partition (4), each streaming its partition through in chunks of 200,000 records with "
        "the state carried over. Resident memory of the workers' children, sampled every "
        "second: the largest executor JVM and the largest Python worker, per tenth of the "
        f"run.\n\n{table}\n\n"
        f"{summary}. {took:,.0f} s ({BACKFILL_EVENTS / took:,.0f} events/s) after an ingest of "
        f"{ingest_s:,.0f} s. Peak over the run: executor JVM "
        f"{max(s[1] for s in samples):,.0f} MB, Python worker {max(s[2] for s in samples):,.0f} "
        f"MB. Load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} cores.\n"
    )
    return text, [defs], [name]


def run(settings: Settings) -> str:
    run_id = uuid.uuid4().hex[:8]
    defs: list[Definitions] = []
    names: list[str] = []
    try:
        tp_text, d, n = _throughput(settings, run_id)
        defs += d
        names += n
        tp10_text, d, n = _throughput(settings, run_id, views=10)
        defs += d
        names += n
        cl_text, d, n = _cluster(settings, run_id)
        defs += d
        names += n
        fr_text, d, n = _engines(settings, run_id)
        defs += d
        names += n
        frc_text, d, n = _freshness(settings, run_id, on_cluster=True)
        defs += d
        names += n
    finally:
        _cleanup(settings, defs, names, run_id)
    return f"{tp_text}\n{tp10_text}\n{cl_text}\n{fr_text}\n{frc_text}"


if __name__ == "__main__":
    from featurestore.config import load_settings

    sections: dict[str, Callable[[Settings, str], tuple[str, list[Definitions], list[str]]]] = {
        "backfill": _backfill, "cluster": _cluster, "freshness": _freshness,
        "engines": _engines, "record": _record,
        "freshness-cluster": functools.partial(_freshness, on_cluster=True),
    }  # fmt: skip
    if len(sys.argv) > 1:  # one section alone: python -m bench.bench_processors backfill
        settings = load_settings()
        run_id = uuid.uuid4().hex[:8]
        text, d, n = sections[sys.argv[1]](settings, run_id)
        try:
            print(text)
        finally:
            _cleanup(settings, d, n, run_id)
    else:
        print(run(load_settings()))
