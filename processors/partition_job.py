"""The per-partition function Spark runs on its Python workers (``mapInArrow``), with its I/O.

For each Kafka partition of a micro-batch, in this order:

1. lock the partition's row of the state table and take its state (from this worker's cache
   when the row's ``next_offset`` says the cache is current, else from the row);
2. run the step (:func:`processors.step.run_step`): records before ``next_offset`` are skipped;
3. send the dead letters and wait for Kafka's acknowledgement (before the commit: a crash
   after it replays the batch, so a dead letter is sent at least once, never lost);
4. upsert the feature rows and store the new state, in the same transaction, and commit;
5. write each symbol's latest rows to Redis (write-if-newer). The same rows are in the state
   row; a worker that loads a state from the table writes them again first, so a crash
   between the commit and Redis is repaired by the next batch of that partition.

One summary row per partition goes back to the driver (counts, timings, and the rolling rows
when the driver has hooks to call). The backfill runs the same function without the state
table: a fresh state per partition, rows committed every ``chunk`` records.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.ingest.kafka import EventProducer, producer_config
from featurestore.online import RedisOnlineWriter
from featurestore.online.base import EntityKey, FeatureRow
from processors.decode import DeadLetter, KafkaRecords, decoder_for
from processors.offline_write import OfflineWriter
from processors.state_table import StateKey
from processors.step import PartitionState, StepResult, run_step
from processors.tables import from_ipc, to_ipc
from processors.views import MaterializedViews

__all__ = ["SUMMARY_DDL", "SUMMARY_SCHEMA", "PartitionJob"]

SUMMARY_SCHEMA = pa.schema(
    [
        ("partition", pa.int32()),
        ("records", pa.int64()),
        ("skipped", pa.int64()),
        ("bars_rows", pa.int64()),
        ("rolling_rows", pa.int64()),
        ("dead_letters", pa.int64()),
        ("duplicates", pa.int64()),
        ("late", pa.int64()),
        ("online_rows", pa.int64()),
        ("state_bytes", pa.int64()),
        ("decode_s", pa.float64()),
        ("machine_s", pa.float64()),
        ("state_s", pa.float64()),
        ("dead_letters_s", pa.float64()),
        ("postgres_s", pa.float64()),
        ("redis_s", pa.float64()),
        ("rolling", pa.binary()),
    ]
)
"""One row per Kafka partition of a batch; ``rolling`` is Arrow IPC (empty without hooks)."""

_SPARK_TYPES = {
    pa.int32(): "int", pa.int64(): "long", pa.float64(): "double", pa.binary(): "binary"
}  # fmt: skip
SUMMARY_DDL = ", ".join(f"{f.name} {_SPARK_TYPES[f.type]}" for f in SUMMARY_SCHEMA)
""":data:`SUMMARY_SCHEMA` in Spark's DDL."""

_MAX_RESOURCES = 8
"""Jobs whose connections a worker keeps open (tests run several processors in one session)."""


@dataclass(frozen=True)
class PartitionJob:
    """Everything the per-partition function needs (picklable: it travels to Spark's workers)."""

    settings: Settings
    views: MaterializedViews
    processor: str
    lateness_us: int
    stateful: bool = True
    """Stream: state from and to the state table. Backfill: a fresh state, nothing stored."""
    return_rolling: bool = False
    """Send the rolling rows back to the driver (for its hooks)."""
    chunk: int = 200_000
    """Backfill: records per committed chunk."""

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``mapInArrow``'s function: Kafka columns in, one summary row per partition out."""
        table = pa.Table.from_batches(list(batches))
        if table.num_rows == 0:
            return
        records = KafkaRecords.from_arrow(table)
        cuts = np.flatnonzero(records.partition[1:] != records.partition[:-1]) + 1
        resources = _resources(self)
        for a, b in itertools.pairwise([0, *cuts.tolist(), len(records)]):
            part = records.slice(a, b)
            try:
                summary = (
                    self._stream(resources, part) if self.stateful else self._batch(resources, part)
                )
            except psycopg.OperationalError as exc:
                _drop_resources(self)
                raise BackendUnavailableError(f"PostgreSQL failed during a batch: {exc}") from exc
            except Exception:
                _drop_resources(self)
                raise
            yield pa.RecordBatch.from_pylist([summary], schema=SUMMARY_SCHEMA)

    @property
    def topic(self) -> str:
        """The topic the job reads."""
        return self.views.topic

    def _stream(self, res: _Resources, records: KafkaRecords) -> dict[str, Any]:
        key = StateKey(
            self.processor, self.views.definitions.project, self.topic, int(records.partition[0])
        )
        timer = _Timer()
        with res.conn.transaction(), res.conn.cursor() as cur:
            next_offset = key.lock(cur)
            state = res.states.pop(key, None)
            repair: bytes | None = None
            if state is None or state.next_offset != next_offset:
                data, repair = key.load(cur)
                state = PartitionState.from_bytes(next_offset, data)
            timer.lap("state_s")
            step = self._step(records, state)
            timer.add("decode_s", step.decode_s)
            timer.add("machine_s", step.machine_s)
            timer.lap(None)
            dead = self._send_dead_letters(res, step.dead)
            timer.lap("dead_letters_s")
            bars = res.offline.write(cur, self.views.bars, step.bars)
            rolling = res.offline.write(cur, self.views.rolling, step.rolling)
            timer.lap("postgres_s")
            blob = state.to_bytes()
            online = _pack(step.latest_bars, step.latest_rolling)
            key.save(cur, state.next_offset, blob, online)
            timer.lap("state_s")
        timer.lap("postgres_s")  # the commit
        written = 0
        if repair:
            written += self._write_online(res, *_unpack(repair))
        written += self._write_online(res, step.latest_bars, step.latest_rolling)
        timer.lap("redis_s")
        res.states[key] = state
        return {
            "partition": key.partition,
            "records": step.records,
            "skipped": step.skipped,
            "bars_rows": bars,
            "rolling_rows": rolling,
            "dead_letters": dead,
            "duplicates": step.duplicates,
            "late": step.late,
            "online_rows": written,
            "state_bytes": len(blob),
            **timer.seconds,
            "rolling": self._rolling_ipc(step.rolling),
        }

    def _batch(self, res: _Resources, records: KafkaRecords) -> dict[str, Any]:
        state = PartitionState(next_offset=int(records.offset[0]))
        timer = _Timer()
        counts = dict.fromkeys(("bars", "rolling", "dead", "online"), 0)
        steps: list[StepResult] = []
        for start in range(0, len(records), self.chunk):
            step = self._step(records.slice(start, start + self.chunk), state)
            steps.append(step)
            timer.add("decode_s", step.decode_s)
            timer.add("machine_s", step.machine_s)
            timer.lap(None)
            counts["dead"] += self._send_dead_letters(res, step.dead)
            timer.lap("dead_letters_s")
            with res.conn.transaction(), res.conn.cursor() as cur:
                counts["bars"] += res.offline.write(cur, self.views.bars, step.bars)
                counts["rolling"] += res.offline.write(cur, self.views.rolling, step.rolling)
            timer.lap("postgres_s")
            counts["online"] += self._write_online(res, step.latest_bars, step.latest_rolling)
            timer.lap("redis_s")
        return {
            "partition": int(records.partition[0]),
            "records": sum(s.records for s in steps),
            "skipped": 0,
            "bars_rows": counts["bars"],
            "rolling_rows": counts["rolling"],
            "dead_letters": counts["dead"],
            "duplicates": sum(s.duplicates for s in steps),
            "late": sum(s.late for s in steps),
            "online_rows": counts["online"],
            "state_bytes": 0,
            **timer.seconds,
            "rolling": self._rolling_ipc(pa.concat_tables([s.rolling for s in steps])),
        }

    def _step(self, records: KafkaRecords, state: PartitionState) -> StepResult:
        return run_step(
            records,
            state,
            decoder_for(self.settings.schema_registry.url),
            topic=self.topic,
            join_key=self.views.join_key,
            lateness_us=self.lateness_us,
        )

    def _rolling_ipc(self, rolling: pa.Table) -> bytes:
        return to_ipc(rolling) if self.return_rolling and rolling.num_rows else b""

    def _write_online(self, res: _Resources, bars: pa.Table, rolling: pa.Table) -> int:
        views = self.views
        rows = _feature_rows(bars, views.bars.name, views.bars.feature_names, views.join_key)
        rows += _feature_rows(
            rolling, views.rolling.name, views.rolling.feature_names, views.join_key
        )
        return res.online.write(rows).written if rows else 0

    def _send_dead_letters(self, res: _Resources, letters: list[DeadLetter]) -> int:
        if not letters:
            return 0
        producer = res.producer()
        topic = self.settings.topics.dead_letter
        for letter in letters:
            headers: list[tuple[str, str | bytes | None]] = [
                ("x-dead-letter-reason", letter.reason.encode()),
                ("x-original-topic", self.topic.encode()),
                ("x-original-partition", str(letter.partition).encode()),
                ("x-original-offset", str(letter.offset).encode()),
                ("x-processor", self.processor.encode()),
            ]
            producer.produce(
                topic, letter.value or b"", key=letter.key, headers=headers,
                timestamp_ms=letter.timestamp_ms,
            )  # fmt: skip
        left = producer.flush(60.0)
        if left:
            raise BackendUnavailableError(
                f"{left} dead letters were not acknowledged by Kafka within 60 s"
            )
        return len(letters)


class _Timer:
    """Seconds per part of a partition's work."""

    def __init__(self) -> None:
        self.seconds = {name: 0.0 for name in SUMMARY_SCHEMA.names if name.endswith("_s")}
        self._clock = time.perf_counter()

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds

    def lap(self, name: str | None) -> None:
        """Charge the time since the last lap to ``name`` (None: to nothing)."""
        now = time.perf_counter()
        if name is not None:
            self.seconds[name] += now - self._clock
        self._clock = now


def _feature_rows(
    table: pa.Table, view: str, features: tuple[str, ...] | list[str], join_key: str
) -> list[FeatureRow]:
    return [
        FeatureRow(
            view=view,
            entity=EntityKey((join_key,), (row[join_key],)),
            event_time=row["event_timestamp"],
            values={name: row[name] for name in features},
        )
        for row in table.to_pylist()
    ]


def _pack(bars: pa.Table, rolling: pa.Table) -> bytes:
    """Two tables in one blob: the first's IPC length (8 bytes), its IPC, the second's IPC."""
    first = to_ipc(bars)
    return len(first).to_bytes(8, "big") + first + to_ipc(rolling)


def _unpack(blob: bytes) -> tuple[pa.Table, pa.Table]:
    size = int.from_bytes(blob[:8], "big")
    return from_ipc(blob[8 : 8 + size]), from_ipc(blob[8 + size :])


class _Resources:
    """A worker's connections for one job, and its cache of partition states."""

    def __init__(self, job: PartitionJob) -> None:
        settings = job.settings
        self.conn = psycopg.connect(settings.postgres.dsn, autocommit=True)
        self.offline = OfflineWriter(self.conn, job.views.definitions)
        self.online = RedisOnlineWriter.from_settings(settings.redis, job.views.online_catalog())
        self.states: dict[StateKey, PartitionState] = {}
        self._bootstrap = settings.kafka.bootstrap
        self._producer: EventProducer | None = None

    def producer(self) -> EventProducer:
        if self._producer is None:
            self._producer = EventProducer(producer_config(self._bootstrap))
        return self._producer

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10.0)
        self.online.close()
        self.conn.close()


_RESOURCES: OrderedDict[tuple[str, ...], _Resources] = OrderedDict()


def _job_key(job: PartitionJob) -> tuple[str, ...]:
    return (job.processor, job.views.definitions.project, job.topic, job.settings.postgres.dsn)


def _resources(job: PartitionJob) -> _Resources:
    key = _job_key(job)
    res = _RESOURCES.get(key)
    if res is None:
        res = _RESOURCES[key] = _Resources(job)
        while len(_RESOURCES) > _MAX_RESOURCES:
            _, old = _RESOURCES.popitem(last=False)
            old.close()
    _RESOURCES.move_to_end(key)
    return res


def _drop_resources(job: PartitionJob) -> None:
    """Forget a job's connections and cached states after a failure (the retry starts clean)."""
    res = _RESOURCES.pop(_job_key(job), None)
    if res is not None:
        with contextlib.suppress(Exception):  # already failing: the original error matters
            res.close()
