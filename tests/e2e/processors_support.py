"""Helpers of the processors' end-to-end tests: topics with real trades, processors started as
in production, stacks of their own, reading the stores back."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import psycopg
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.definitions import Definitions
from featurestore.definitions import FeatureView
from featurestore.definitions import market_definitions
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import Trade
from featurestore.events import replay_topic
from featurestore.events import to_micros
from featurestore.events.codec import TRADE_CODEC
from featurestore.events.registry import value_subject
from featurestore.events.schemas import bundled_schema
from featurestore.events.schemas import parse_schema_text
from featurestore.events.serde import AvroSerializer
from featurestore.online import OnlineFeatures
from featurestore.online import RedisOnlineStore
from featurestore.online.base import EntityKey
from featurestore.online.base import FeatureRef
from featurestore.online.testing import delete_project_keys
from featurestore.processor_files import processor_log
from featurestore.stack import Stack
from featurestore.stack.process import stop_group
from featurestore.stack.processors import start_processor
from processors import resilient
from processors.handle import ProcessorHandle
from processors.options import Engine
from processors.options import ProcessorOptions
from processors.status import read_status
from processors.wiring import ProcessorWiring
from tests.own_stack import own_stack
from tests.ports import free_port_block
from tests.unit.processors.oracle import SourceEvent
from tests.unit.processors.oracle import compute_features

MARKET = Path("/work/shared/data/market")
TRADE_FILES = [MARKET / "20131007_ibm_Trade_Tick.csv.gz", MARKET / "20131007_aig_Trade_Tick.csv.gz"]
"""Two real trade files (IBM and AIG, 2013-10-07): the topic of most runs here."""
BASELINE = "baseline"
"""The label of the session's baseline run (``tests/e2e/conftest.py``'s ``trades_world``): one
local-mode Spark processor (the step on the driver) read to the end of the session's topic."""
VIEWS = ("bars_1m", "rolling_1m")
"""The views whose tables the runs compare (by :func:`checksum`)."""
STACK_SERVERS = ["postgres", "redis", "kafka", "schema-registry"]
BAR_FEATURES = [
    "open", "high", "low", "close", "volume", "trade_count", "avg_trade_size", "vwap", "notional",
]  # fmt: skip
ROLLING = [
    "vwap_5m", "vwap_15m", "realized_vol_5m", "realized_vol_15m", "price_momentum_1m",
    "price_momentum_5m", "volume_5m", "volume_ratio", "sma_5", "sma_20",
]  # fmt: skip


@dataclass
class World:
    """A topic of real trades, and the runs that read it: each label its own Feast project,
    tables and processor name (``<prefix>_<label>_<run>``, ``<prefix>-<label>-<run>``)."""

    settings: Settings
    run: str
    topic: str
    records: int
    junk: int = 0
    trades: pd.DataFrame = field(default_factory=pd.DataFrame)
    dead_letter_start: dict[int, int] = field(default_factory=dict)
    projects: dict[str, Definitions] = field(default_factory=dict)
    prefix: str = "e2e"
    session: World | None = None
    """The session's World of the same topic (see :meth:`for_module`), whose run
    :data:`BASELINE` is this World's too; None in the session's World itself."""

    def for_module(self, prefix: str) -> World:
        """A World of this topic for one test module: a run id of its own (its runs' names,
        tables and processors are its own, dropped by its :meth:`clean_up`), and this World's
        :data:`BASELINE` run under the same label, which stays this World's to drop."""
        return replace(self, run=uuid.uuid4().hex[:8], projects={}, prefix=prefix, session=self)

    def clean_up(self) -> None:
        """Drop what this World's runs wrote; the topic too, unless this World is a module's
        (:meth:`for_module`): the session's World drops it at the end."""
        topics = [self.topic] if self.session is None else []
        clean_up(self.settings, self.projects.values(), f"{self.prefix}-*-{self.run}*", topics)

    def definitions(self, label: str) -> Definitions:
        if self.session is not None and label == BASELINE:
            return self.session.definitions(label)
        if label not in self.projects:
            defs = market_definitions(
                f"{self.prefix}_{label}_{self.run}",
                table_prefix=f"{self.prefix}_{self.run}_{label}_",
                source_topic=self.topic,
                ttl=timedelta(0),
            )
            apply_definitions(self.settings, defs)
            self.projects[label] = defs
        return self.projects[label]

    def table(self, label: str, view: str) -> str:
        return self.definitions(label).view(view).source.table

    def options(self, label: str, **kw: Any) -> ProcessorOptions:
        if self.session is not None and label == BASELINE:
            return self.session.options(label, **kw)
        return ProcessorOptions(
            name=f"{self.prefix}-{label}-{self.run}", project=self.definitions(label).project,
            topic=self.topic, **kw,
        )  # fmt: skip

    def sums(self, label: str) -> dict[str, tuple[int, str]]:
        """The :func:`checksum` of each of :data:`VIEWS`' tables of ``label``."""
        return {v: checksum(self.settings, self.table(label, v)) for v in VIEWS}

    def process(
        self,
        label: str,
        *,
        definitions: Definitions | None = None,
        split: bool = False,
        **kw: Any,
    ) -> list[ProcessorHandle]:
        """Run processor ``label`` in this process until it has read every record, then stop it:
        one application, or with ``split`` two splitting the partitions ({0, 1} and {2, 3}).

        ``kw`` adds options (``engine="kafka"``, batch sizes); ``definitions`` replaces the
        label's. Returns the applications' handles (their totals and reports).
        """
        definitions = definitions or self.definitions(label)
        halves: list[dict[str, Any]] = [{"partitions": (0, 1)}, {"partitions": (2, 3)}]
        applications = [self.options(label, **part, **kw) for part in (halves if split else [{}])]
        # A Spark application takes longer to start and to read the topic than the Kafka engine.
        timeout_s = 400.0 if applications[0].engine == "spark" else 120.0
        handles: list[ProcessorHandle] = []
        try:
            for options in applications:
                handles.append(
                    resilient.start_processor(self.settings, options, ProcessorWiring(definitions))
                )
            wait_for(
                lambda: sum(h.totals.get("records", 0) for h in handles) >= self.records,
                timeout_s,
                "both applications" if split else "the engine",
            )
        finally:
            for handle in handles:
                handle.stop()
        assert sum(h.totals["records"] for h in handles) == self.records
        return handles

    def online(self, label: str, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """Latest online rows per symbol: {symbol: {"view:feature": value, "_ts:view": time}}."""
        refs = [FeatureRef("bars_1m", f) for f in BAR_FEATURES]
        refs += [FeatureRef("rolling_1m", f) for f in ROLLING]
        entities = [EntityKey.of(symbol=s) for s in symbols]
        result = read_online(self.settings, self.definitions(label), self.topic, entities, refs)
        out: dict[str, dict[str, Any]] = {s: {} for s in symbols}
        for ref, column in zip(result.refs, result.columns, strict=True):
            for symbol, value in zip(symbols, column, strict=True):
                out[symbol][str(ref)] = value.value
                out[symbol][f"_ts:{ref.view}"] = value.event_time
        return out

    def kill_mid_stream_then_restart(
        self,
        label: str,
        engine: Engine,
        *,
        like: str,
        max_offsets: int,
        batches: int,
        timeout_s: float,
    ) -> None:
        """SIGKILL processor ``label`` (a child, as in production) after ``batches`` batches of
        ``max_offsets`` records, start it again, and wait until its tables and Redis rows are
        those of run ``like``; then stop it with SIGTERM, which it must obey cleanly.

        The kill ends the whole process group (Spark's JVM too) with no clean-up at all, mid-batch
        or between; the restart reads the rest in one batch, so that its start is what is tested.
        """
        opts = self.options(label)
        status_path = opts.status_path(self.settings)
        log = processor_log(self.settings, opts.name)

        def launch(*extra: str) -> subprocess.Popen[bytes]:
            return start_processor(
                self.settings, opts.name, opts.project, self.topic, "--engine", engine, *extra
            )

        def batch_id() -> int:
            return int((read_status(status_path) or {}).get("batch_id", -1))

        first = launch("--max-offsets", str(max_offsets))  # killed well before the end
        try:
            wait_for(lambda: batch_id() >= batches - 1, timeout_s, f"{batches} batches", log)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
        killed_at = read_status(status_path)
        assert killed_at is not None and 0 < killed_at["totals"]["records"] < self.records
        second = launch()
        symbols = ["IBM", "AIG", "EVOL"]
        try:
            wait_for(
                lambda: self.sums(label) == self.sums(like),
                timeout_s,
                "the restarted processor to rebuild the tables",
                log,
            )
            wait_for(
                lambda: self.online(label, symbols) == self.online(like, symbols),
                60,
                "Redis to hold the same latest rows",
            )
        finally:
            stop_group(second)  # SIGTERM: it finishes its batch and exits cleanly
        assert second.returncode == 0, log.read_text()[-3000:]
        assert f"processor {opts.name}: stopped" in log.read_text()


def ingest_files(settings: Settings, topic: str, files: list[Path]) -> None:
    """Replay trade files into ``topic`` with the project's own ingest command."""
    env = {**settings_env(settings), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "featurestore.cli", "ingest", "files", "--topic", topic,
         *map(str, files)],
        check=True, env=env, capture_output=True, timeout=180,
    )  # fmt: skip


def ingest_trades_and_junk(settings: Settings, topic: str) -> tuple[pd.DataFrame, int]:
    """:data:`TRADE_FILES` into ``topic``, then EVOL's trades (schema v1 and v2) and undecodable
    records into a partition the files left free.

    Returns the logged trades and how many undecodable records were sent.
    """
    ingest_files(settings, topic, TRADE_FILES)
    start_us = int(datetime(2013, 10, 7, 14, 0, tzinfo=UTC).timestamp() * 1_000_000)
    taken = set(logged_trades(settings, topic)["partition"])
    free = min(set(range(settings.kafka.default_partitions)) - taken)
    junk = produce_v2_trades_and_junk(settings, topic, start_us, 240, partition=free)
    return logged_trades(settings, topic), junk


def produce_v2_trades_and_junk(
    settings: Settings, topic: str, start_us: int, n: int, partition: int
) -> int:
    """Trades of symbol EVOL alternating schema v1 and v2, then two undecodable records.

    All go to ``partition``, which the caller chooses without other symbols: EVOL's trades are
    older than the files' and would be late in a partition that holds later ones.

    Returns how many undecodable records were sent.
    """
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
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


def dead_letter_ends(settings: Settings) -> dict[int, int]:
    """The end offset of each partition of the dead-letter topic: where the next letter goes."""
    consumer = Consumer(settings.kafka.connection.consumer("x"))
    try:
        meta = consumer.list_topics(settings.topics.dead_letter, timeout=10)
        parts = meta.topics[settings.topics.dead_letter].partitions
        return {
            p: consumer.get_watermark_offsets(
                TopicPartition(settings.topics.dead_letter, p), timeout=10
            )[1]
            for p in parts
        }
    finally:
        consumer.close()


def logged_trades(settings: Settings, topic: str) -> pd.DataFrame:
    """Every trade of the topic with its log position, read back by the project's replay."""
    rows = []
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
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
                    "exchange": trade.exchange,
                }
            )
    frame = pd.DataFrame(rows)
    return frame.sort_values(["symbol", "partition", "offset"]).reset_index(drop=True)


def source_events(trades: pd.DataFrame) -> list[SourceEvent]:
    """The oracle's events of logged trades (a :func:`logged_trades` frame), in its order."""
    return [
        SourceEvent(r.symbol, int(r.event_us), int(r.kafka_ms), int(r.partition), int(r.offset),
                    str(r.trade_id), {"price": r.price, "size": r.size, "exchange": r.exchange})
        for r in trades.itertuples()
    ]  # fmt: skip


def oracle_rows(trades: pd.DataFrame, views: Sequence[FeatureView]) -> dict[str, pd.DataFrame]:
    """Per view, the independent oracle's rows by symbol and event time, a null feature NaN.

    ``trades`` is a :func:`logged_trades` frame, each partition computed in log order. Besides
    the features, each row has ``symbol``, ``event_us``, ``created_ms``, ``first_offset`` and
    ``last_offset``, to compare with :func:`read_table`'s columns.
    """
    frames: dict[str, list[dict[str, Any]]] = {v.name: [] for v in views}
    for _, part in trades.sort_values(["partition", "offset"]).groupby("partition"):
        for view, rows in compute_features(views, source_events(part)).rows.items():
            for (symbol, at), row in rows.items():
                values = {k: (np.nan if v is None else v) for k, v in row.values.items()}
                frames[view].append(
                    {"symbol": symbol, "event_us": at, "created_ms": row.created_ms,
                     "first_offset": row.first_offset, "last_offset": row.last_offset, **values}
                )  # fmt: skip
    return {
        v: pd.DataFrame(rows).sort_values(["symbol", "event_us"]).reset_index(drop=True)
        for v, rows in frames.items()
    }


def read_online(
    settings: Settings,
    defs: Definitions,
    topic: str,
    entities: list[EntityKey],
    refs: list[FeatureRef],
) -> OnlineFeatures:
    """The online rows the processors wrote for ``defs``' views of ``topic``, read once through
    the store's read path."""
    import asyncio

    from processors.views import MaterializedViews

    catalog = MaterializedViews.resolve(defs, topic).online_catalog()

    async def read() -> OnlineFeatures:
        store = RedisOnlineStore.from_settings(settings.redis, catalog)
        try:
            return await store.read(entities, refs)
        finally:
            await store.close()

    return asyncio.run(read())


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


def wait_for(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    log: Path | None = None,
    explain: Callable[[], str] | None = None,
) -> None:
    """Poll ``predicate`` until it holds; past ``timeout_s`` fail naming ``what``, with the
    tail of ``log`` (a processor's output) when given, so that CI's output says why."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            if log is not None:
                _dump_stacks(log)
            tail = f"\n--- {log} (tail) ---\n{log.read_text()[-12000:]}" if log else ""
            seen = f"\n--- seen ---\n{explain()}" if explain is not None else ""
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}{seen}{tail}"
            )
        time.sleep(0.5)


def _dump_stacks(log: Path) -> None:
    """Ask the processor writing ``log`` for its threads' stacks (SIGUSR1), into that log.

    Its ready file (``processors/<name>/ready.json`` beside ``processors/<name>.log``) holds its
    PID while it runs. A SIGKILLed processor leaves the file behind, and its PID may be another
    process's since (which SIGUSR1 would end): only a ``processors run --name <name>`` is asked.
    """
    try:
        pid = int(json.loads((log.parent / log.stem / "ready.json").read_text())["pid"])
        command = psutil.Process(pid).cmdline()
    except (OSError, ValueError, KeyError, psutil.Error):
        return
    named = any(a == "--name" and b == log.stem for a, b in itertools.pairwise(command))
    if "processors" not in command or "run" not in command or not named:
        return
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGUSR1)
    time.sleep(1.0)


def clean_up(
    settings: Settings,
    projects: Iterable[Definitions],
    processors: str,
    topics: Iterable[str],
) -> None:
    """Drop what a test's projects wrote (tables, Redis keys), its processors' folders
    (``processors`` is a glob under the processors' data folder) and its topics."""
    projects = list(projects)
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        for defs in projects:
            for view in defs.views:
                conn.execute(f'DROP TABLE IF EXISTS "{view.source.table}" CASCADE')
    delete_project_keys(settings.redis, *(defs.project for defs in projects))
    for path in (settings.data_dir / "processors").glob(processors):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    topics = list(topics)
    if not topics:
        return
    admin = AdminClient(settings.kafka.connection.admin())
    for future in admin.delete_topics(topics).values():
        future.result()


@contextmanager
def private_stack(
    prefix: str, env: Mapping[str, str] | None = None, start_timeout_s: float = 0.0
) -> Iterator[Stack]:
    """A stack of its own (PostgreSQL, Redis, Kafka, registry) on free ports, up for the block:
    the shared stack is neither used nor touched. ``env`` adds settings; each server gets at least
    ``start_timeout_s`` to start."""
    # Not under pytest's tmp_path: every pytest run on the machine makes /tmp/pytest-of-<user>
    # private again, and PostgreSQL, which runs as another user, then cannot reach its data.
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    base = free_port_block(5)
    ports = {
        "FEATURESTORE_KAFKA__PORT": str(base),
        "FEATURESTORE_KAFKA__CONTROLLER_PORT": str(base + 1),
        "FEATURESTORE_KAFKA__HEAP": "256m",
        "FEATURESTORE_POSTGRES__PORT": str(base + 2),
        "FEATURESTORE_REDIS__PORT": str(base + 3),
        "FEATURESTORE_SCHEMA_REGISTRY__PORT": str(base + 4),
        "FEATURESTORE_METRICS__ENABLED": "false",
    }
    try:
        with own_stack(
            folder / "stack", {**ports, **(env or {})}, STACK_SERVERS,
            start_timeout_s=start_timeout_s,
        ) as stack:  # fmt: skip
            yield stack
    finally:
        shutil.rmtree(folder, ignore_errors=True)
