"""The streaming job: Kafka -> per-partition steps -> PostgreSQL, Redis, dead letters.

Spark reads the topic and schedules the micro-batches; each batch's records come to the driver
as Arrow (``toArrow``, one task per Kafka partition: ``minPartitions`` and
``maxRecordsPerPartition`` are never set) and each Kafka partition's records go through
:class:`processors.partition_job.PartitionJob` in a thread of its own. That work runs while Spark
reads the next batch (:class:`processors.spark.pipeline.BatchPipeline`). No shuffle, no Spark state
store, no Python worker per task: a ``mapInArrow`` task pays a Python worker's set-up per
partition and batch, several times what ``toArrow`` costs per batch in all (figures in
``processors/README.md``). Exactly-once rests on the state table (:mod:`processors.state_table`),
not on Spark's checkpoint: every start reads from the state table's next offsets with a fresh
checkpoint, and a replayed batch's records are skipped by each partition's ``next_offset``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from featurestore.config import Settings
from featurestore.processor_files import processor_dir
from processors.claims import claim_run
from processors.claims import topic_partitions
from processors.handle import EngineExitedError
from processors.options import ProcessorOptions
from processors.partition_job import SUMMARY_DDL
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionRunner
from processors.partition_job import PartitionSummary
from processors.partition_job import split_partitions
from processors.recorder import BatchRecorder
from processors.recorder import RowsHook
from processors.report import BatchReport
from processors.spark.executors import start_session
from processors.spark.pipeline import BatchPipeline
from processors.spark.session import JVM_GONE_ERRORS
from processors.spark.session import jvm_exited
from processors.spark.session import spark_stopped
from processors.views import MaterializedViews
from processors.wiring import ProcessorWiring

__all__ = [
    "RowsHook",
    "StreamHandle",
    "kafka_records",
    "start_stream",
    "starting_offsets",
    "topic_partitions",
]

logger = logging.getLogger(__name__)

_THREADS = 8
"""Partitions processed at once: the GIL serializes the decoding, but one partition's PostgreSQL
and Redis round trips overlap another's Python work."""

_JVM_EXIT_WAIT_S = 10.0
"""How long a failed stop waits to see whether Spark's JVM is ending."""


def kafka_records(
    reader: Any, settings: Settings, topic: str, partitions: Sequence[int] | None = None
) -> Any:
    """The Kafka source's columns the processors use (``reader``: readStream or read).

    ``partitions``: read only these partitions of the topic (Kafka's ``assign``).
    """
    from pyspark.sql import functions

    frame = reader.format("kafka").options(**settings.kafka.connection.spark_options())
    if partitions is None:
        frame = frame.option("subscribe", topic)
    else:
        frame = frame.option("assign", json.dumps({topic: sorted(partitions)}))
    return frame, lambda df: df.select(
        "key", "value", "partition", "offset",
        functions.unix_millis("timestamp").alias("timestamp_ms"),
    )  # fmt: skip


def starting_offsets(
    settings: Settings,
    topic: str,
    stored: dict[int, int],
    default: str,
    partitions: Sequence[int] | None = None,
) -> str:
    """Where a run starts: each partition's stored next offset; ``default`` for the others.

    ``partitions``: the run reads only these (the JSON names exactly them).

    Raises:
        BackendUnavailableError: Kafka does not answer.
        ConfigurationError: the topic does not exist.
    """
    if not stored and (partitions is None or not default.lstrip().startswith("{")):
        return default
    chosen = topic_partitions(settings, topic) if partitions is None else sorted(partitions)
    fallback: dict[str, int] = {}
    if default.lstrip().startswith("{"):
        fallback = {str(k): int(v) for k, v in json.loads(default).get(topic, {}).items()}
    unknown = -1 if default == "latest" else -2  # Spark's JSON: -1 latest, -2 earliest
    offsets = {str(p): stored.get(p, fallback.get(str(p), unknown)) for p in chosen}
    return json.dumps({topic: offsets})


def scratch_checkpoint(home: Path) -> Path:
    """Where this run keeps Spark's checkpoint: memory (``/dev/shm``) when the machine has it.

    The checkpoint only has to outlive a batch (a run starts from the state table), and Spark
    writes and renames a few files in it per micro-batch, faster on tmpfs than on the data disk
    (figures in ``processors/README.md``). The folder names the driver's
    PID; folders of drivers that are gone (killed before they could delete theirs) are deleted.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        return home / "checkpoint"
    for old in shm.glob(f"{_SCRATCH}-*"):
        pid = old.name.removeprefix(f"{_SCRATCH}-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    return shm / f"{_SCRATCH}-{os.getpid()}-{digest}"


_SCRATCH = "featurestore-checkpoint"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class StreamHandle:
    """A running streaming query and what it needs to be stopped cleanly."""

    query: Any
    spark: Any
    runner: PartitionRunner | None = None
    pool: ThreadPoolExecutor | None = None
    pipeline: BatchPipeline | None = None
    listener: Any = None
    status_path: Any = None
    checkpoint: Path | None = None
    totals: dict[str, int] = field(default_factory=dict)
    reports: Sequence[BatchReport] = field(default_factory=list)
    """The latest batches' reports of this process, in order (the recorder's, bounded)."""

    def wait(self, stop: threading.Event | None = None, poll_s: float = 1.0) -> None:
        """Block until the query ends (error, or ``stop`` is set: then stop it)."""
        try:
            while self.query.isActive:
                if stop is not None and stop.is_set():
                    break
                if self.pipeline is not None and self.pipeline.failure() is not None:
                    break  # a batch's work failed: stop() raises its error
                self.query.awaitTermination(poll_s)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the query, finish the batch being processed and release what the run held.

        Raises:
            EngineExitedError: Spark stopped under the query: a SIGTERM to the whole process
                group reaches its JVM too, whose shutdown hook stops Spark while the query runs
                or is being stopped. The Python side of the batch in flight is still finished.
        """
        failure: BaseException | None = None
        error: Any = None
        exited: EngineExitedError | None = None
        try:
            if self.listener is not None:
                self.spark.streams.removeListener(self.listener)
                self.listener = None
            if self.query.isActive:
                self.query.stop()
            error = self.query.exception()
            if error is not None and spark_stopped(self.spark):
                exited, error = _spark_ended(error), None
        except JVM_GONE_ERRORS as exc:
            if not (spark_stopped(self.spark) or jvm_exited(_JVM_EXIT_WAIT_S)):
                raise
            exited = _spark_ended(exc)
        finally:
            if self.pipeline is not None:
                try:
                    self.pipeline.close()
                except Exception as exc:  # raised below, after the connections are closed
                    failure = exc
            if self.pool is not None:
                self.pool.shutdown()
            if self.runner is not None:
                self.runner.close()
            if self.checkpoint is not None:
                shutil.rmtree(self.checkpoint, ignore_errors=True)
        if failure is not None:
            raise RuntimeError(f"the processor failed storing a batch: {failure}") from failure
        if exited is not None:
            raise exited
        if error is not None:
            raise RuntimeError(f"the processor's streaming query failed: {error}") from error


def _spark_ended(cause: BaseException) -> EngineExitedError:
    error = EngineExitedError(
        "Spark stopped under the streaming query (its JVM was ending); the next start reads "
        "from the state table's offsets"
    )
    error.__cause__ = cause
    return error


def start_stream(
    settings: Settings, options: ProcessorOptions, wiring: ProcessorWiring | None = None
) -> StreamHandle:
    """Start the streaming job in this process; returns once the query runs.

    ``options``: project, topic, Spark and state machine settings; ``wiring``: the definitions,
    hooks, metrics and retrier (:class:`~processors.wiring.ProcessorWiring`).
    """
    wiring = wiring or ProcessorWiring()
    views = wiring.views(settings, options)  # before starting Spark
    return _StreamStart(settings, options, views, wiring).start()


@dataclass(frozen=True)
class _StreamStart:
    """One start of the streaming job: what it reads, from where, and where batches go."""

    settings: Settings
    options: ProcessorOptions
    views: MaterializedViews
    wiring: ProcessorWiring

    def start(self) -> StreamHandle:
        """Start Spark, claim the partitions, start the query; returns its handle."""
        settings, options = self.settings, self.options
        home = processor_dir(settings, options.name)
        # Spark and the cluster first: a start that gets no executors must not have claimed
        # (and so fenced off) the partitions of the application that holds them.
        spark, executors = start_session(settings, options)
        claim = claim_run(settings, options, self.views)
        start_at = starting_offsets(
            settings, self.views.topic, claim.stored, options.starting_offsets, options.partitions
        )
        checkpoint = self._checkpoint(home)
        job = PartitionJob(
            settings, self.views, options.name,
            hook_view=self.wiring.rows_view, epochs=claim.epochs,
        )  # fmt: skip
        status_path = options.status_path(settings)
        extra = {
            "topic": self.views.topic, "project": self.views.definitions.project,
            "processor": options.name, "engine": "spark",
            "executors": [e.describe() for e in executors],
        }  # fmt: skip
        wiring = self.wiring
        recorder = BatchRecorder(status_path, extra, metrics=wiring.metrics, hooks=wiring.hooks)
        batches: _DriverBatches | _ExecutorBatches = (
            _ExecutorBatches(job, recorder)
            if options.runs_on_executors
            else _DriverBatches(PartitionRunner(job, wiring.retrier), recorder)
        )
        from processors.spark.listener import ProgressListener

        listener = ProgressListener(recorder, wiring.metrics)
        spark.streams.addListener(listener)
        query = (
            self._records(spark, start_at)
            .writeStream.queryName(f"processor_{options.instance}")
            .foreachBatch(batches.on_batch)
            .option("checkpointLocation", str(checkpoint))
            .trigger(processingTime=f"{options.trigger_ms} milliseconds")
            .start()
        )
        driver = batches if isinstance(batches, _DriverBatches) else None
        return StreamHandle(
            query, spark,
            driver.runner if driver else None, driver.pool if driver else None,
            driver.pipeline if driver else None, listener, status_path, checkpoint,
            recorder.totals, recorder.reports,
        )  # fmt: skip

    def _checkpoint(self, home: Path) -> Path:
        """Spark's checkpoint for this run, emptied: the state table says where to start."""
        shared = self.settings.spark_cluster.checkpoint_dir
        on_cluster = not self.options.master.startswith("local")
        checkpoint = (
            Path(shared) / self.options.instance
            if shared and on_cluster
            else scratch_checkpoint(home / self.options.instance)
        )
        shutil.rmtree(checkpoint, ignore_errors=True)
        return checkpoint

    def _records(self, spark: Any, start_at: str) -> Any:
        """The streaming frame of the topic's records, from ``start_at``."""
        options = self.options
        reader, columns = kafka_records(
            spark.readStream, self.settings, self.views.topic, options.partitions
        )
        reader = reader.option("startingOffsets", start_at)
        if options.max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
        return columns(reader.load())


class _DriverBatches:
    """Each batch's partitions in the driver's threads, while Spark reads the next batch."""

    def __init__(self, runner: PartitionRunner, recorder: BatchRecorder) -> None:
        """Run partitions with ``runner``; report batches to ``recorder``."""
        self.runner = runner
        self.pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="partition")
        self.pipeline = BatchPipeline()
        self._recorder = recorder

    def on_batch(self, frame: Any, batch_id: int) -> None:
        """``foreachBatch``: read the batch as Arrow, then hand it over once the last is done."""
        began = time.perf_counter()
        table = frame.toArrow()
        read_s = time.perf_counter() - began
        waiting = time.perf_counter()
        self.pipeline.drain()  # the previous batch's work; raises its error
        waited_s = time.perf_counter() - waiting
        self.pipeline.submit(functools.partial(self._process, table, batch_id, read_s, waited_s))

    def _process(self, table: Any, batch_id: int, read_s: float, waited_s: float) -> None:
        began = time.perf_counter()
        summaries = list(self.pool.map(self.runner.run, split_partitions(table)))
        seconds = {"spark read (toArrow)": read_s, "waiting for the previous batch": waited_s}
        self._recorder.finish(summaries, batch_id, time.perf_counter() - began, seconds)


class _ExecutorBatches:
    """Each batch's step in the executors' tasks: only the summaries reach the driver."""

    def __init__(self, job: PartitionJob, recorder: BatchRecorder) -> None:
        """Run ``job`` in ``mapInArrow`` tasks; report batches to ``recorder``."""
        self._job = job
        self._recorder = recorder

    def on_batch(self, frame: Any, batch_id: int) -> None:
        """``foreachBatch``: run the tasks, gather their summary rows."""
        began = time.perf_counter()
        rows = frame.mapInArrow(self._job, SUMMARY_DDL).collect()
        summaries = [PartitionSummary.from_row(row.asDict()) for row in rows]
        self._recorder.finish(summaries, batch_id, time.perf_counter() - began, {})
