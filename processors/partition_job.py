"""The per-partition step with its I/O: the stream runs it on the driver, the backfill in tasks.

For each Kafka partition of a micro-batch (a thread per partition on the driver, see
:mod:`processors.spark.stream`), in this order:

1. lock the partition's rows of the state table, one per view (in name order), and take each
   view's state (from this worker's cache when the row's ``next_offset`` says the cache is
   current, else from the row);
2. run the step (:func:`processors.step.run_step`): each view skips the records before its
   ``next_offset`` (a view added later starts at 0 and catches up);
3. write each entity's latest rows to Redis (write-if-newer), before the commit, so that the
   online store's freshness does not wait for PostgreSQL. A crash before the commit replays
   the batch from the stored state, which computes the same rows again (the step is
   deterministic), so what Redis got early is what PostgreSQL gets. The latest rows are also
   kept in the state row, and a worker that loads a state from the table writes them again
   first (harmless when Redis has them: write-if-newer);
4. send the dead letters and wait for Kafka's acknowledgement (before the commit: a crash
   after it replays the batch, so a dead letter is sent at least once, never lost);
5. upsert the feature rows and store the new state, in the same transaction, and commit.

Each partition's work ends in a summary row (counts, timings, and the rows of the hook view
when the driver has hooks to call). The backfill runs the same function in ``mapInArrow``
without the state table: a fresh state per partition, rows committed every ``chunk`` records.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa

from featurestore.config import Settings
from featurestore.error_maps import postgres_error
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.events.dead_letters import ORIGINAL_OFFSET_HEADER
from featurestore.events.dead_letters import ORIGINAL_PARTITION_HEADER
from featurestore.events.dead_letters import ORIGINAL_TOPIC_HEADER
from featurestore.events.dead_letters import PROCESSOR_HEADER
from featurestore.events.dead_letters import REASON_HEADER
from featurestore.ingest.kafka import EventProducer
from featurestore.ingest.kafka import producer_config
from featurestore.offline.write import OfflineWriter
from featurestore.online import RedisOnlineWriter
from featurestore.resilience import Retrier
from processors.decode import DeadLetter
from processors.decode import KafkaRecords
from processors.decode import decoder_for
from processors.metrics import observations
from processors.state_table import StateKey
from processors.state_table import check_owner
from processors.step import PartitionState
from processors.step import StepResult
from processors.step import held_by
from processors.step import run_step
from processors.summary import SECONDS
from processors.summary import SUMMARY_DDL
from processors.summary import SUMMARY_SCHEMA
from processors.summary import PartitionSummary
from processors.tables import from_ipc
from processors.tables import to_ipc
from processors.views import MaterializedViews

__all__ = [
    "SUMMARY_DDL",
    "SUMMARY_SCHEMA",
    "PartitionJob",
    "PartitionResources",
    "PartitionRunner",
    "PartitionSummary",
    "StageTimer",
    "dropped_on_failure",
    "pack_tables",
    "split_partitions",
    "unpack_tables",
]


@dataclass(frozen=True)
class PartitionJob:
    """Everything the per-partition function needs (picklable: it travels to Spark's workers)."""

    settings: Settings
    views: MaterializedViews
    processor: str
    stateful: bool = True
    """Stream: state from and to the state table. Backfill: a fresh state, nothing stored."""
    hook_view: str | None = None
    """Send this view's new rows back to the driver (for its hooks)."""
    chunk: int = 200_000
    """Backfill: records per committed chunk."""
    python: tuple[int, int] = (sys.version_info.major, sys.version_info.minor)
    """The driver's Python (major, minor): an executor with another refuses the task."""
    epochs: Mapping[int, int] | None = None
    """Stream: the partitions this application claimed, with their epochs (a step commits
    only while the partition's epoch is this one, :func:`processors.state_table.check_owner`);
    None: no ownership check."""

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``mapInArrow``'s function: Kafka columns in, one summary row per partition out.

        In a stream (``stateful``) the task's runner is this Python worker's: Spark reuses the
        worker for the next batches' tasks, so its connections and the states it committed
        last stay warm (a state is used only when the locked row's ``next_offset`` matches).
        A backfill's runner lives for the task and reads the partition in chunks of
        :attr:`chunk` records, so its memory does not grow with the log.
        """
        _check_python(self.python)
        if self.stateful:
            received = list(batches)
            if not received:  # a Kafka partition without records in the range: nothing to do
                return
            runner = _worker_runner(self)
            for part in split_partitions(pa.Table.from_batches(received)):
                yield pa.RecordBatch.from_pylist([runner.run(part).row()], schema=SUMMARY_SCHEMA)
            return
        runner = PartitionRunner(self)
        try:
            for chunk in _chunks(batches, self.chunk):
                for part in split_partitions(chunk):
                    summary = runner.run(part).row()
                    yield pa.RecordBatch.from_pylist([summary], schema=SUMMARY_SCHEMA)
        finally:
            runner.close()

    @property
    def topic(self) -> str:
        """The topic the job reads."""
        return self.views.topic

    def stream_step(self, res: PartitionResources, records: KafkaRecords) -> PartitionSummary:
        """A stream's step for one partition: state locked and stored, rows committed."""
        partition = int(records.partition[0])
        project = self.views.definitions.project
        keys = {
            name: StateKey(self.processor, project, self.topic, partition, name)
            for name in sorted(self.views.plans)
        }
        timer = StageTimer()
        states: dict[str, PartitionState] = {}
        with res.conn.transaction(), res.conn.cursor() as cur:
            self.hold_partition(cur, partition)
            repairs: list[bytes] = []
            for name, key in keys.items():  # in name order: two processors never deadlock
                next_offset = key.lock(cur)
                state = res.states.pop(key, None)
                if state is None or state.next_offset != next_offset:
                    stored = key.load(cur)
                    if stored.online:
                        repairs.append(stored.online)
                    state = PartitionState.from_bytes(
                        next_offset, stored.state, stored.chunks,
                        fingerprint=self.views.fingerprint(name),
                        former_fingerprint=self.views.former_fingerprint(name), view=name,
                    )  # fmt: skip
                states[name] = state
            timer.lap("state_s")
            step = self.step(records, states)
            timer.add("decode_s", step.decode_s)
            timer.add("machine_s", step.machine_s)
            timer.lap(None)
            written = sum(self.write_online(res, unpack_tables(blob)) for blob in repairs)
            written += self.write_online(res, step.latest)
            timer.lap("redis_s")
            observed = observations(
                records, step.dead, self.online_tables(step.latest), time.time()
            )
            dead = self.send_dead_letters(res, step.dead)
            timer.lap("dead_letters_s")
            counts = self.write_offline(res, cur, step.rows)
            timer.lap("postgres_s")
            state_bytes = 0
            for name, key in keys.items():
                state = states[name]
                blob = state.to_bytes()
                state_bytes += len(blob)
                key.save(
                    cur, state.next_offset, blob, pack_tables({name: step.latest[name]}),
                    state.take_new_events(), state.horizons(),
                )  # fmt: skip
            timer.lap("state_s")
        timer.lap("postgres_s")  # the commit
        for name, key in keys.items():
            res.states[key] = states[name]
        held = held_by(states)
        return PartitionSummary(
            partition=partition,
            records=step.records,
            skipped=step.skipped,
            rows=sum(counts.values()),
            rows_by_view=counts,
            dead_letters=dead,
            duplicates=step.duplicates,
            late=step.late,
            online_rows=written,
            state_bytes=state_bytes,
            state_tiles=held.tiles,
            state_open_events=held.open_events,
            seconds=timer.seconds,
            hook_rows=self._hook_ipc([step]),
            observed=observed,
        )

    def batch_steps(self, res: PartitionResources, records: KafkaRecords) -> PartitionSummary:
        """A backfill's steps for one partition's records, committed every :attr:`chunk`."""
        states = res.backfill_states  # the partition's earlier chunks of this task left them
        if not states:
            first = int(records.offset[0])
            states.update({name: PartitionState(next_offset=first) for name in self.views.plans})
        timer = StageTimer()
        counts: dict[str, int] = {}
        dead = online = 0
        steps: list[StepResult] = []
        for start in range(0, len(records), self.chunk):
            step = self.step(records.slice(start, start + self.chunk), states)
            steps.append(step)
            timer.add("decode_s", step.decode_s)
            timer.add("machine_s", step.machine_s)
            timer.lap(None)
            dead += self.send_dead_letters(res, step.dead)
            timer.lap("dead_letters_s")
            with res.conn.transaction(), res.conn.cursor() as cur:
                for name, n in self.write_offline(res, cur, step.rows).items():
                    counts[name] = counts.get(name, 0) + n
            timer.lap("postgres_s")
            online += self.write_online(res, step.latest)
            timer.lap("redis_s")
        held = held_by(states)
        return PartitionSummary(
            partition=int(records.partition[0]),
            records=sum(s.records for s in steps),
            rows=sum(counts.values()),
            rows_by_view=counts,
            dead_letters=dead,
            duplicates=sum(s.duplicates for s in steps),
            late=sum(s.late for s in steps),
            online_rows=online,
            state_tiles=held.tiles,
            state_open_events=held.open_events,
            seconds=timer.seconds,
            hook_rows=self._hook_ipc(steps),
        )

    def hold_partition(self, cur: Any, partition: int) -> None:
        """Hold ``partition``'s ownership for ``cur``'s transaction (no check without epochs).

        Raises:
            PartitionFencedError: another application claimed the partition since.
        """
        if self.epochs is not None:
            check_owner(
                cur, self.processor, self.views.definitions.project, self.topic, partition,
                self.epochs.get(partition),
            )  # fmt: skip

    def step(self, records: KafkaRecords, states: dict[str, PartitionState]) -> StepResult:
        """The step (:func:`processors.step.run_step`) of one partition's records, no I/O."""
        source = self.views.plan.source
        decoder = decoder_for(self.settings.schema_registry, source)
        return run_step(records, states, decoder, self.views.plans, source)

    def write_offline(
        self, res: PartitionResources, cur: Any, rows: dict[str, pa.Table]
    ) -> dict[str, int]:
        """Upsert each view's rows in ``cur``'s transaction; returns the rows per view."""
        return {
            name: res.offline.write(cur, self.views.view(name), table)
            for name, table in rows.items()
        }

    def _hook_ipc(self, steps: list[StepResult]) -> bytes:
        if self.hook_view is None:
            return b""
        table = pa.concat_tables([s.rows[self.hook_view] for s in steps])
        return to_ipc(table) if table.num_rows else b""

    def online_tables(self, latest: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
        """The latest rows that go to Redis: those of views not declared ``online=False``.

        What :meth:`write_online` writes, and what freshness is measured on.
        """
        return {
            name: table
            for name, table in latest.items()
            if table.num_rows and self.views.view(name).online
        }

    def write_online(self, res: PartitionResources, latest: Mapping[str, pa.Table]) -> int:
        """Write each entity's latest rows to Redis (write-if-newer); returns the rows written.

        A view declared ``online=False`` is left out: its rows go to its offline table only.
        """
        tables = [
            (name, table, self.views.view(name).feature_names)
            for name, table in self.online_tables(latest).items()
        ]
        return res.online.write_tables(tables, self.views.join_key).written if tables else 0

    def send_dead_letters(self, res: PartitionResources, letters: list[DeadLetter]) -> int:
        """Send dead letters and wait for Kafka's acknowledgement; returns how many."""
        if not letters:
            return 0
        producer = res.producer()
        topic = self.settings.topics.dead_letter
        for letter in letters:
            headers: list[tuple[str, str | bytes | None]] = [
                (REASON_HEADER, letter.reason.encode()),
                (ORIGINAL_TOPIC_HEADER, self.topic.encode()),
                (ORIGINAL_PARTITION_HEADER, str(letter.partition).encode()),
                (ORIGINAL_OFFSET_HEADER, str(letter.offset).encode()),
                (PROCESSOR_HEADER, self.processor.encode()),
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


class StageTimer:
    """Seconds per part of a partition's work (:data:`processors.summary.SECONDS`)."""

    def __init__(self) -> None:
        """Start the clock, every part at 0."""
        self.seconds = dict.fromkeys(SECONDS, 0.0)
        self._clock = time.perf_counter()

    def add(self, name: str, seconds: float) -> None:
        """Charge ``seconds`` measured elsewhere to ``name``."""
        self.seconds[name] += seconds

    def lap(self, name: str | None) -> None:
        """Charge the time since the last lap to ``name`` (None: to nothing)."""
        now = time.perf_counter()
        if name is not None:
            self.seconds[name] += now - self._clock
        self._clock = now


def pack_tables(tables: dict[str, pa.Table]) -> bytes:
    """Named tables in one blob: per table, its name and IPC, each preceded by its length."""
    out = bytearray()
    for name, table in tables.items():
        for part in (name.encode(), to_ipc(table)):
            out += len(part).to_bytes(8, "big") + part
    return bytes(out)


def unpack_tables(blob: bytes) -> dict[str, pa.Table]:
    """The named tables :func:`pack_tables` put in ``blob``."""
    parts: list[bytes] = []
    at = 0
    while at < len(blob):
        size = int.from_bytes(blob[at : at + 8], "big")
        parts.append(blob[at + 8 : at + 8 + size])
        at += 8 + size
    return {parts[i].decode(): from_ipc(parts[i + 1]) for i in range(0, len(parts), 2)}


class PartitionResources:
    """One partition's connections, and its state as last committed by this process."""

    def __init__(self, job: PartitionJob) -> None:
        """Connect to PostgreSQL and Redis for ``job`` (Kafka's producer on first use)."""
        settings = job.settings
        self.conn = psycopg.connect(settings.postgres.dsn, autocommit=True)
        try:
            self.offline = OfflineWriter(self.conn, job.views.definitions)
            # A Redis Cluster client connects here: with Redis away this raises.
            self.online = RedisOnlineWriter.from_settings(
                settings.redis, job.views.online_catalog()
            )
        except BaseException:
            self.conn.close()
            raise
        self.states: dict[StateKey, PartitionState] = {}
        self.backfill_states: dict[str, PartitionState] = {}
        """A backfill's states of this partition's views, carried from chunk to chunk."""
        self._kafka = settings.kafka.connection
        self._producer: EventProducer | None = None

    def producer(self) -> EventProducer:
        """The dead letters' producer (made on first use)."""
        if self._producer is None:
            self._producer = EventProducer(producer_config(self._kafka))
        return self._producer

    def close(self) -> None:
        """Close the producer (flushed first) and the connections, whatever any of them raises.

        A partition's resources are closed after a failure too (a backend away), when flushing
        or closing one of them may fail in turn; that must not leave the others open.
        """
        with contextlib.ExitStack() as closing:
            closing.callback(self.conn.close)
            closing.callback(self.online.close)
            if self._producer is not None:
                closing.callback(self._producer.close, 10.0)


def _check_python(driver: tuple[int, int]) -> None:
    here = (sys.version_info.major, sys.version_info.minor)
    if here != driver:
        raise ConfigurationError(
            f"the executor runs Python {here[0]}.{here[1]} and the driver Python "
            f"{driver[0]}.{driver[1]}: pickled steps need the same minor version on every node "
            "(set PYSPARK_PYTHON, or ship the environment with spark.archives)"
        )


_WORKER_RUNNERS: dict[tuple[str, str, str, str], PartitionRunner] = {}
_WORKER_LOCK = threading.Lock()


def _worker_runner(job: PartitionJob) -> PartitionRunner:
    """This Python worker's runner of a stream's job (made on its first task)."""
    views = job.views
    key = (
        job.processor,
        job.topic,
        job.settings.postgres.dsn,
        ",".join(f"{name}={views.fingerprint(name)}" for name in sorted(views.plans)),
    )
    with _WORKER_LOCK:
        runner = _WORKER_RUNNERS.get(key)
        if runner is None:
            # No health file in an executor: its outages are in its log, the step waits them out.
            runner = _WORKER_RUNNERS[key] = PartitionRunner(job, Retrier())
        return runner


def _chunks(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Arrow batches regrouped into tables of about ``size`` rows (the last one smaller)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        held.append(batch)
        count += batch.num_rows
        if count >= size:
            yield pa.Table.from_batches(held)
            held, count = [], 0
    if held:
        yield pa.Table.from_batches(held)


def split_partitions(table: pa.Table) -> list[KafkaRecords]:
    """The records of each Kafka partition in ``table``, in log order."""
    if table.num_rows == 0:
        return []
    records = KafkaRecords.from_arrow(table)
    cuts = np.flatnonzero(records.partition[1:] != records.partition[:-1]) + 1
    return [records.slice(a, b) for a, b in itertools.pairwise([0, *cuts.tolist(), len(records)])]


@contextlib.contextmanager
def dropped_on_failure(partition: int, drop: Callable[[], None]) -> Iterator[None]:
    """Call ``drop`` when a partition's step fails, then raise.

    ``drop`` forgets the partition's connections and state, so the next attempt reconnects and
    reloads the state from the table. A PostgreSQL error is raised as :func:`postgres_error`
    translates it: a lost connection is retried, a refused login is not.
    """
    try:
        yield
    except psycopg.OperationalError as exc:
        drop()
        raise postgres_error(exc, f"partition {partition}'s batch") from exc
    except Exception:
        drop()
        raise


class PartitionRunner:
    """Runs a job's partitions in this process, with one set of connections per partition.

    A partition's connections (and its cached state) are used by one call at a time, so calls
    for different partitions may run in parallel threads. After a failure a partition's
    connections and cached state are dropped: the retry reconnects and reloads the state.
    """

    def __init__(self, job: PartitionJob, retrier: Retrier | None = None) -> None:
        """Run ``job``'s partitions, waiting out outages with ``retrier`` in a stream."""
        self.job = job
        self.retrier = retrier
        """A stream's steps wait out outages with it (None: a failure is raised at once). A
        backfill never retries: its chunks carry state from one to the next."""
        self._resources: dict[int, PartitionResources] = {}
        self._lock = threading.Lock()

    def run(self, records: KafkaRecords) -> PartitionSummary:
        """Process one partition's records; returns what its step did.

        In a stream with a :attr:`retrier`, a transient failure (a backend away) is retried
        until it succeeds: each attempt reconnects and reloads the partition's state from the
        locked state rows, so the records it committed before are skipped and the rolled back
        ones are done again. Anything else is raised.
        """
        if self.retrier is None or not self.job.stateful:
            return self._run_once(records)
        partition = int(records.partition[0])
        return self.retrier.call(lambda: self._run_once(records), f"partition {partition}")

    def _run_once(self, records: KafkaRecords) -> PartitionSummary:
        partition = int(records.partition[0])
        job = self.job
        with dropped_on_failure(partition, lambda: self._drop(partition)):
            with self._lock:
                res = self._resources.get(partition)
                if res is None:
                    res = self._resources[partition] = PartitionResources(self.job)
            return job.stream_step(res, records) if job.stateful else job.batch_steps(res, records)

    def _drop(self, partition: int) -> None:
        with self._lock:
            res = self._resources.pop(partition, None)
        if res is not None:
            with contextlib.suppress(Exception):  # already failing: the original error matters
                res.close()

    def close(self) -> None:
        """Close every connection."""
        for partition in list(self._resources):
            self._drop(partition)
