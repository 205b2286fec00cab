"""The driver's side of a micro-batch: write what the symbols produced, in a safe order.

1. PostgreSQL, both views (idempotent upsert on (symbol, event_timestamp), newest
   ``created_timestamp`` wins): every row that will ever be served online is offline first.
2. Redis, the latest row per symbol and view of the batch (write-if-newer, so a replayed batch
   or an older row never regresses what is served).
3. Dead letters to the dead-letter topic, with the reason and where the record came from.
4. The rolling-row hooks (for example the anomaly scorer), after the rows are stored.

A batch that fails part-way is replayed by Spark from its checkpoint with the same input and
the same state, and every step above is idempotent for a replayed batch (dead letters are
at-least-once: a replay may send one twice; each carries its original partition and offset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.ingest.kafka import EventProducer, producer_config
from featurestore.offline import write_feature_rows
from featurestore.online import RedisOnlineWriter
from featurestore.online.base import EntityKey, FeatureRow
from processors.tables import from_ipc
from processors.views import MaterializedViews

__all__ = ["FeatureSink", "RollingHook", "SinkReport"]

log = logging.getLogger(__name__)

RollingHook = Callable[[pd.DataFrame], None]
"""Called with the new rolling_1m rows of a batch (pandas, offline column names) once stored."""


@dataclass
class SinkReport:
    """What one batch wrote, and how long each part took."""

    records: int = 0
    bars_rows: int = 0
    rolling_rows: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    late: int = 0
    online_rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _latest_rows(
    tables: Sequence[pa.Table], view: str, features: Sequence[str], join_key: str
) -> list[FeatureRow]:
    """The last row of each symbol's table (tables are one symbol each, sorted by time)."""
    rows = []
    for table in tables:
        if table.num_rows == 0:
            continue
        last = table.slice(table.num_rows - 1, 1).to_pylist()[0]
        rows.append(
            FeatureRow(
                view=view,
                entity=EntityKey((join_key,), (last[join_key],)),
                event_time=last["event_timestamp"],
                values={name: last[name] for name in features},
            )
        )
    return rows


class FeatureSink:
    """Writes the per-symbol results of a batch to the offline and online stores."""

    def __init__(
        self,
        settings: Settings,
        views: MaterializedViews,
        *,
        processor: str,
        hooks: Sequence[RollingHook] = (),
    ) -> None:
        self.views = views
        self.processor = processor
        self.hooks: list[RollingHook] = list(hooks)
        """Rolling-row hooks, called in order after each batch is stored (empty by default)."""
        self._dead_letter_topic = settings.topics.dead_letter
        try:
            self._conn = psycopg.connect(settings.postgres.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc
        self._online = RedisOnlineWriter.from_settings(settings.redis, views.online_catalog())
        self._producer = EventProducer(producer_config(settings.kafka.bootstrap))

    def write(self, results: Sequence[Mapping[str, Any]]) -> SinkReport:
        """Store one batch; ``results`` are rows of :data:`processors.spark.stateful.OUTPUT_DDL`."""
        report = SinkReport()
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            report.seconds[name] = report.seconds.get(name, 0.0) + now - clock
            clock = now

        bars = [from_ipc(r["bars"]) for r in results if r["bars_rows"]]
        rolling = [from_ipc(r["rolling"]) for r in results if r["rolling_rows"]]
        dead = [from_ipc(r["dead"]) for r in results if r["dead_rows"]]
        for r in results:
            report.records += int(r["records"])
            report.duplicates += int(r["duplicates"])
            report.late += int(r["late"])
        report.seconds["decode (tasks)"] = sum(float(r["decode_s"]) for r in results)
        report.seconds["state machine (tasks)"] = sum(float(r["machine_s"]) for r in results)
        lap("unpack")
        views = self.views
        definitions = views.definitions
        try:
            if bars:
                report.bars_rows = write_feature_rows(
                    self._conn, definitions, views.bars.name, pa.concat_tables(bars)
                )
            if rolling:
                report.rolling_rows = write_feature_rows(
                    self._conn, definitions, views.rolling.name, pa.concat_tables(rolling)
                )
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(f"PostgreSQL failed during a batch: {exc}") from exc
        lap("postgres")
        online = _latest_rows(bars, views.bars.name, views.bars.feature_names, views.join_key)
        online += _latest_rows(
            rolling, views.rolling.name, views.rolling.feature_names, views.join_key
        )
        report.online_rows = self._online.write(online).written
        lap("redis")
        if dead:
            report.dead_letters = self._send_dead_letters(pa.concat_tables(dead))
        lap("dead letters")
        if self.hooks and rolling:
            frame = pa.concat_tables(rolling).to_pandas()
            for hook in self.hooks:
                hook(frame)
        lap("hooks")
        return report

    def _send_dead_letters(self, table: pa.Table) -> int:
        topic = self.views.topic
        for row in table.to_pylist():
            headers = [
                ("x-dead-letter-reason", row["reason"].encode()),
                ("x-original-topic", topic.encode()),
                ("x-original-partition", str(row["partition"]).encode()),
                ("x-original-offset", str(row["offset"]).encode()),
                ("x-processor", self.processor.encode()),
            ]
            self._producer.produce(
                self._dead_letter_topic,
                row["value"] or b"",
                key=row["key"],
                headers=headers,
                timestamp_ms=int(row["timestamp_ms"]),
            )
        left = self._producer.flush(60.0)
        if left:
            raise BackendUnavailableError(
                f"{left} dead letters were not acknowledged by Kafka within 60 s"
            )
        return int(table.num_rows)

    def close(self) -> None:
        """Release the connections."""
        self._producer.flush(10.0)
        self._online.close()
        self._conn.close()


def now_iso() -> str:
    """The current time for status files."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
