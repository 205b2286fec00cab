"""Helpers of the processors' end-to-end tests: topics with real trades, reading the stores back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import psycopg
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from featurestore.config import Settings, settings_env
from featurestore.definitions import Definitions
from featurestore.events import ConfluentSchemaStore, LoggedEvent, Trade, replay_topic, to_micros
from featurestore.events.codec import TRADE_CODEC
from featurestore.events.registry import value_subject
from featurestore.events.schemas import bundled_schema, parse_schema_text
from featurestore.events.serde import AvroSerializer

MARKET = Path("/work/shared/data/market")


def ingest_files(settings: Settings, topic: str, files: list[Path]) -> None:
    """Replay trade files into ``topic`` with the project's own ingest command."""
    env = {**settings_env(settings), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "featurestore.cli", "ingest", "files", "--topic", topic,
         *map(str, files)],
        check=True, env=env, capture_output=True, timeout=180,
    )  # fmt: skip


def produce_v2_trades_and_junk(
    settings: Settings, topic: str, start_us: int, n: int, partition: int
) -> int:
    """Trades of symbol EVOL alternating schema v1 and v2, then two undecodable records.

    All go to ``partition``, which the caller chooses without other symbols: EVOL's trades are
    older than the files' and would be late in a partition that holds later ones.

    Returns how many undecodable records were sent.
    """
    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    v1 = AvroSerializer.for_topic(store, topic, TRADE_CODEC.event_type)
    raw = json.loads(bundled_schema("trade").text)
    raw["fields"].append({"name": "venue_seq", "type": "long", "default": 0})
    v2_schema = parse_schema_text(json.dumps(raw))
    v2 = AvroSerializer(
        TRADE_CODEC, v2_schema, store.register(value_subject(topic), v2_schema.text)
    )
    assert v2.schema_id != v1.schema_id
    producer = Producer(settings.kafka.connection.producer(**{"linger.ms": 5}))
    for i in range(n):
        event_us = start_us + i * 4_700_000
        record = {
            "symbol": "EVOL", "price": 50.0 + (i % 7) * 0.25 - (i % 3) * 0.1, "size": 100 + i,
            "event_time": event_us, "exchange": "Q", "conditions": [], "trade_id": f"evol-{i}",
            "currency": "USD", "source": "test",
        }  # fmt: skip
        value = v2.encode_wire({**record, "venue_seq": i}) if i % 2 else v1.encode_wire(record)
        producer.produce(topic, value, b"EVOL", partition=partition, timestamp=event_us // 1000)
    junk = [b"not avro at all", b"\x00\x00\x0f\x42\x3f" + b"\x02AB"]  # unknown schema id 999999
    for value in junk:
        producer.produce(topic, value, b"JUNK", partition=partition)
    assert producer.flush(30) == 0
    return len(junk)


def logged_trades(settings: Settings, topic: str) -> pd.DataFrame:
    """Every trade of the topic with its log position, read back by the project's replay."""
    rows = []
    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    for item in replay_topic(settings.kafka.connection, store, topic):
        if not isinstance(item, LoggedEvent) or not isinstance(item.event, Trade):
            continue
        trade = item.event
        rows.append(
            {
                "symbol": trade.symbol,
                "event_us": to_micros(trade.event_time),
                "price": trade.price,
                "size": float(trade.size),
                "kafka_ms": item.timestamp_ms,
                "partition": item.partition,
                "offset": item.offset,
                "trade_id": trade.trade_id,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values(["symbol", "partition", "offset"]).reset_index(drop=True)


def read_table(settings: Settings, table: str, key: str = "symbol") -> pd.DataFrame:
    """An offline table with times as integer us (event) and ms (created), by ``key`` and time."""
    with psycopg.connect(settings.postgres.dsn) as conn:
        cur = conn.execute(
            f"SELECT *, (extract(epoch FROM event_timestamp) * 1000000)::bigint AS event_us, "
            f"(extract(epoch FROM created_timestamp) * 1000)::bigint AS created_ms "
            f'FROM "{table}" ORDER BY "{key}", event_timestamp'
        )
        names = [d.name for d in cur.description or []]
        frame = pd.DataFrame(cur.fetchall(), columns=names)
    return frame.drop(columns=["event_timestamp", "created_timestamp"])


def checksum(settings: Settings, table: str, key: str = "symbol") -> tuple[int, str]:
    """(rows, md5 of every row's text in key order), lineage and created time included."""
    with psycopg.connect(settings.postgres.dsn) as conn:
        row = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' "
            f'ORDER BY t."{key}", t.event_timestamp), \'\')) FROM "{table}" t'
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def clean_up(
    settings: Settings,
    projects: Iterable[Definitions],
    processors: str,
    topics: Iterable[str],
) -> None:
    """Drop what a test's projects wrote (tables, Redis keys), its processors' folders
    (``processors`` is a glob under the processors' data folder) and its topics."""
    client = redis.Redis(
        host=settings.redis.host,
        port=settings.redis.port,
        db=settings.redis.db,
        **settings.redis.client_kwargs(),
    )
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn, client:
        for defs in projects:
            for view in defs.views:
                conn.execute(f'DROP TABLE IF EXISTS "{view.source.table}" CASCADE')
            keys = [k for k in client.scan_iter(count=1000) if k.endswith(defs.project.encode())]
            if keys:
                client.delete(*keys)
    for path in (settings.data_dir / "processors").glob(processors):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    admin = AdminClient(settings.kafka.connection.admin())
    for future in admin.delete_topics(list(topics)).values():
        future.result()


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a processor started in its own session: SIGTERM to its group, SIGKILL after 60 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
