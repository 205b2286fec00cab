"""The Kafka engine: a consumer in the processor's own process feeds each partition's step.

``featurestore processors run --engine kafka``. No Spark: a confluent-kafka consumer is
assigned this application's partitions by hand (no group protocol, no rebalances) at the
offsets the state table holds (:func:`processors.claims.claim_run`), and a loop polls it for a
few milliseconds at a time (:attr:`ProcessorOptions.poll_ms`). What a poll returned is one
batch: its records, split by Kafka partition, go through
:class:`processors.partition_job.PartitionRunner` in parallel threads, exactly as the Spark
engine's driver-side path runs them; then the next poll. librdkafka fetches in the background
meanwhile, so the next batch is in memory when this one ends.

Exactly-once is the Spark engine's argument (``processors/README.md``): each partition's
rows and state are committed in one PostgreSQL transaction, fenced by the partition's epoch,
and a step skips the records before the stored ``next_offset``. By default the commit comes
at most every ``--commit-ms`` (:class:`processors.interval_runner.IntervalRunner`: Redis is
written after every batch, PostgreSQL on a thread while the next batches are stepped);
``--commit-ms 0`` commits after every batch (:class:`PartitionRunner`). Kafka's
committed offsets are never written nor read (``enable.auto.commit`` is off and nothing commits):
where a run starts is the state table's, so a SIGKILL at any moment restarts from what was
committed. A batch is processed before the next poll and a partition's records stay in log
order.

Why it exists: Spark's micro-batch has a fixed cost per batch (offsets, the offset and commit
logs, planning, ``toArrow``: ~0.5 s a cycle on this machine), so an event waits one to two
cycles; here it waits for the poll (a few ms) and the batch in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka import OFFSET_END
from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.kafka_connection import create_client
from featurestore.resilience import Outage
from featurestore.resilience import Retrier
from processors.claims import claim_run
from processors.decode import KafkaRecords
from processors.interval_runner import IntervalRunner
from processors.metrics import ProcessorMetrics
from processors.options import ProcessorOptions
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionRunner
from processors.recorder import BatchRecorder
from processors.report import BatchReport
from processors.wiring import ProcessorWiring

__all__ = [
    "ConsumerHandle",
    "consumer_config",
    "group_records",
    "start_consumer",
    "start_positions",
]

logger = logging.getLogger(__name__)

_THREADS = 8
"""Partitions processed at once, as in the Spark engine's driver-side path."""
_MAX_POLL = 1_000_000
"""confluent-kafka's limit on the records one ``consume`` call returns."""
_DOWN = (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT)


def consumer_config(settings: Settings, options: ProcessorOptions) -> dict[str, Any]:
    """The consumer's configuration: the store's Kafka connection, and what this engine needs.

    No offsets are committed (the state table is the record of what was applied); fetches are
    answered as soon as a record is there (``fetch.wait.max.ms`` bounds the broker's wait when
    none is), and a full local queue is fetched again after 1 ms instead of librdkafka's 1 s.
    While the brokers are away it tries them again at least every second (librdkafka's
    backoff grows to 10 s, which a restarted broker would wait out before the processor
    resumed).
    """
    reset = "latest" if options.starting_offsets == "latest" else "earliest"
    return settings.kafka.connection.consumer(
        f"featurestore-processor-{options.instance}",
        **{
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "auto.offset.reset": reset,
            "fetch.wait.max.ms": 10,
            "fetch.queue.backoff.ms": 1,
            "reconnect.backoff.max.ms": 1_000,
        },
    )


def start_positions(
    topic: str, partitions: Sequence[int], stored: dict[int, int], starting: str
) -> list[TopicPartition]:
    """Where each partition starts: its stored next offset; else ``starting``.

    ``starting``: ``earliest``, ``latest`` or Spark's JSON (``{"topic": {"0": 42}}``, -2 for
    earliest and -1 for latest), as ``--starting-offsets`` takes it for both engines.

    Raises:
        ConfigurationError: ``starting`` is none of those.
    """
    given: dict[int, int] = {}
    text = starting.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
            given = {int(p): int(o) for p, o in dict(doc.get(topic, {})).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigurationError(
                f"--starting-offsets {starting!r}: give earliest, latest or JSON such as "
                f'{{"{topic}": {{"0": 42}}}}'
            ) from exc
        default = OFFSET_BEGINNING
    elif text in ("earliest", "latest"):
        default = OFFSET_BEGINNING if text == "earliest" else OFFSET_END
    else:
        raise ConfigurationError(
            f"--starting-offsets {starting!r}: give earliest, latest or JSON offsets"
        )
    special = {-2: OFFSET_BEGINNING, -1: OFFSET_END}
    out = []
    for partition in sorted(partitions):
        offset = stored.get(partition, given.get(partition, default))
        out.append(TopicPartition(topic, partition, special.get(offset, offset)))
    return out


def group_records(messages: Sequence[Any]) -> tuple[list[KafkaRecords], list[KafkaError]]:
    """A poll's messages as each partition's records (log order), and the errors among them."""
    by_partition: dict[int, list[Any]] = {}
    errors = []
    for message in messages:
        error = message.error()
        if error is not None:
            errors.append(error)
            continue
        by_partition.setdefault(message.partition(), []).append(message)
    records = [
        KafkaRecords.of(
            [m.key() for m in got],
            [m.value() for m in got],
            [partition] * len(got),
            [m.offset() for m in got],
            [m.timestamp()[1] for m in got],
        )
        for partition, got in sorted(by_partition.items())
    ]
    return records, errors


class ConsumerHandle:
    """A running Kafka engine (its loop on a thread of its own) and how to stop it.

    The same surface as :class:`processors.spark.stream.StreamHandle`: :meth:`wait`,
    :meth:`stop`, :attr:`totals`, :attr:`reports`.
    """

    def __init__(
        self,
        consumer: Any,
        runner: PartitionRunner | IntervalRunner,
        recorder: BatchRecorder,
        options: ProcessorOptions,
        *,
        metrics: ProcessorMetrics | None,
        retrier: Retrier | None,
        status_path: Path,
    ) -> None:
        """Run ``runner`` on ``consumer``'s records once :meth:`start` is called."""
        self._consumer = consumer
        self._runner = runner
        self._recorder = recorder
        self._options = options
        self._metrics = metrics
        self._retrier = retrier
        self.status_path = status_path
        self._pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="partition")
        self._halt = threading.Event()
        self._error: BaseException | None = None
        self._kafka_down = False
        self._fatal: KafkaError | None = None
        self._thread = threading.Thread(target=self._loop, name="kafka-engine", daemon=True)

    @property
    def totals(self) -> dict[str, int]:
        """Counts since this process started."""
        return self._recorder.totals

    @property
    def reports(self) -> Sequence[BatchReport]:
        """The latest batches' reports, in order (:data:`processors.recorder.REPORTS_KEPT`)."""
        return self._recorder.reports

    @property
    def active(self) -> bool:
        """Whether the loop still runs."""
        return self._thread.is_alive()

    def failure(self) -> BaseException | None:
        """The error that ended the loop (None while it runs or when it was stopped)."""
        return self._error if not self._thread.is_alive() else None

    def start(self) -> None:
        """Start the loop on its thread."""
        self._thread.start()

    def wait(self, stop: threading.Event | None = None, poll_s: float = 1.0) -> None:
        """Block until the loop ends (an error, or ``stop`` is set: then stop it)."""
        try:
            while self._thread.is_alive():
                if stop is not None and stop.is_set():
                    break
                self._thread.join(poll_s)
        finally:
            self.stop()

    def stop(self) -> None:
        """Finish the batch in flight, close the consumer and the connections.

        Raises:
            RuntimeError: the loop had ended with an error (chained).
        """
        self._halt.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        self._pool.shutdown()
        if isinstance(self._runner, IntervalRunner):
            self._runner.close(commit=self._error is None)  # after a failure: nothing more
        else:
            self._runner.close()
        with contextlib.suppress(RuntimeError):  # closed already (a second stop)
            self._consumer.close()
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(f"the processor failed storing a batch: {error}") from error

    def _loop(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # handed to wait()/stop(), which raise it
            self._error = exc

    def _run(self) -> None:
        consumer, recorder, progress = self._consumer, self._recorder, self._recorder.progress
        poll_s = self._options.poll_ms / 1000.0
        most = min(self._options.max_offsets_per_trigger or _MAX_POLL, _MAX_POLL)
        batch_id = 0
        checked = 0.0
        while not self._halt.is_set():
            began = time.perf_counter()
            messages = consumer.consume(most, poll_s)
            polled = time.perf_counter()
            if self._fatal is not None:
                raise BackendUnavailableError(f"the Kafka consumer failed: {self._fatal.str()}")
            records, errors = group_records(messages)
            for error in errors:
                self._on_message_error(error)
            if isinstance(self._runner, IntervalRunner):  # commits due on the other partitions
                self._runner.flush(skip={int(r.partition[0]) for r in records})
            if records:
                self._kafka_up()
            elif self._kafka_down and polled - checked >= 1.0:
                checked = polled
                self._probe()
            if not records:
                continue
            summaries = list(self._pool.map(self._runner.run, records))
            done = time.perf_counter()
            count = sum(len(r) for r in records)
            progress.lag = self._lag()
            progress.batch_ms = round(1000 * (done - began))
            progress.events_per_s = count / max(done - began, 1e-6)
            if self._metrics is not None:
                self._metrics.lag(progress.lag)
            recorder.finish(summaries, batch_id, done - polled, {"kafka poll": polled - began})
            batch_id += 1

    def _lag(self) -> int | None:
        """Records behind the topic's end, from the high watermarks librdkafka last saw."""
        total = 0
        for part in self._consumer.assignment():
            try:
                _, high = self._consumer.get_watermark_offsets(part, cached=True)
                position = self._consumer.position([part])[0].offset
            except Exception:  # a figure for the status file, not worth failing
                return None
            if high >= 0 and position >= 0:
                total += max(0, high - position)
        return total

    def on_error(self, error: KafkaError) -> None:
        """The consumer's error callback (on the polling thread): outages and fatal errors."""
        if error.fatal():
            self._fatal = error
        elif error.code() in _DOWN:
            self._kafka_down = True
            if self._retrier is not None:
                self._retrier.health.down(Outage("kafka", error.str()))
        else:
            logger.warning("Kafka consumer: %s", error.str())

    def _on_message_error(self, error: KafkaError) -> None:
        code = error.code()
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION):
            raise ConfigurationError(
                f"topic {self._recorder.extra['topic']!r} or one of its partitions is gone: "
                f"{error.str()}"
            )
        if error.fatal():
            raise BackendUnavailableError(f"the Kafka consumer failed: {error.str()}")
        logger.warning("Kafka consumer: %s", error.str())

    def _probe(self) -> None:
        """While Kafka was away and nothing arrives: does the cluster answer again?"""
        try:
            self._consumer.list_topics(timeout=2.0)
        except Exception:  # still away; the error callback said so
            return
        self._kafka_up()

    def _kafka_up(self) -> None:
        if self._kafka_down:
            self._kafka_down = False
            if self._retrier is not None:
                self._retrier.health.up("kafka")


def start_consumer(
    settings: Settings, options: ProcessorOptions, wiring: ProcessorWiring | None = None
) -> ConsumerHandle:
    """Start the Kafka engine in this process; returns once its partitions are assigned.

    Raises:
        ConfigurationError: an unknown hook view, a topic that does not exist, bad
            ``--starting-offsets``.
        BackendUnavailableError: PostgreSQL or Kafka is unreachable.
    """
    wiring = wiring or ProcessorWiring()
    views = wiring.views(settings, options)
    topic = views.topic
    start_positions(topic, [], {}, options.starting_offsets)  # refuse bad offsets before claiming
    claim = claim_run(settings, options, views)
    positions = start_positions(topic, claim.partitions, claim.stored, options.starting_offsets)
    job = PartitionJob(
        settings, views, options.name, hook_view=wiring.rows_view, epochs=claim.epochs
    )
    status_path = options.status_path(settings)
    extra = {
        "topic": topic, "project": views.definitions.project, "processor": options.name,
        "engine": "kafka", "partitions": list(claim.partitions), "executors": [],
    }  # fmt: skip
    recorder = BatchRecorder(status_path, extra, metrics=wiring.metrics, hooks=wiring.hooks)
    handle: ConsumerHandle | None = None

    def on_error(error: KafkaError) -> None:
        if handle is not None:
            handle.on_error(error)

    consumer = create_client(Consumer, {**consumer_config(settings, options), "error_cb": on_error})
    try:
        consumer.assign(positions)
    except Exception as exc:
        consumer.close()
        raise BackendUnavailableError(f"assigning {topic} to the consumer: {exc}") from exc
    runner: PartitionRunner | IntervalRunner = PartitionRunner(job, wiring.retrier)
    if options.commit_ms and not wiring.hooks:  # hooks get rows once committed: every batch
        runner = IntervalRunner(job, wiring.retrier, options.commit_ms / 1000.0)
    handle = ConsumerHandle(
        consumer,
        runner,
        recorder,
        options,
        metrics=wiring.metrics,
        retrier=wiring.retrier,
        status_path=status_path,
    )
    handle.start()
    logger.info(
        "kafka engine: %s partitions %s from %s", topic, list(claim.partitions),
        {p.partition: p.offset for p in positions},
    )  # fmt: skip
    return handle
