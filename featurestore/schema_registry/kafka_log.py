"""The registry's log in a compacted Kafka topic: a fenced writer, a tail, the committed end.

One partition keeps a total order; ``cleanup.policy=compact`` keeps the latest record per key,
which is all a replay needs.

Writes are transactions of one producer whose ``transactional.id`` is the same for every
instance of the registry on this topic. The instance that takes the lead calls
``init_transactions``, which bumps the producer epoch at the broker: from then on the previous
leader's producer is fenced (its commits fail), and its open transaction, if any, is aborted.
Readers use ``read_committed``, so a record that a deposed leader wrote but could not commit is
never seen by anyone, and compaction never lets such a record replace a committed one. The
state every instance derives from the log is therefore the same, whatever leader wrote it.

:class:`LogTail` follows the log in a thread of its own and hands each batch of records to a
callback with the position after it; :meth:`KafkaRecordLog.end_position` asks the broker for
the committed end (the last stable offset), which is what a reader must have applied to have seen
every acknowledged write (the read barrier of a follower).
"""

from __future__ import annotations

import logging
import threading
import uuid
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka import Producer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from featurestore.errors import FeatureStoreError
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client
from featurestore.schema_registry.errors import NotLeaderError
from featurestore.schema_registry.errors import StoreError
from featurestore.schema_registry.errors import StoreTimeoutError
from featurestore.schema_registry.records import LogRecord
from featurestore.schema_registry.records import decode_record
from featurestore.schema_registry.records import encode_record
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics

__all__ = ["KafkaRecordLog", "LogTail", "LogThread"]

logger = logging.getLogger(__name__)

OnBatch = Callable[[list[LogRecord], int], None]
"""Receives records read from the log, in order, and the log position after them."""


class KafkaRecordLog:
    """A :class:`~featurestore.schema_registry.log.RecordLog` in one compacted Kafka topic."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        replication_factor: int | None = None,
        min_insync_replicas: int | None = None,
        timeout_s: float = 30.0,
        write_timeout_s: float = 10.0,
    ) -> None:
        """Prepare clients; nothing connects until the first call.

        Args:
            kafka: The Kafka cluster and its security (``settings.kafka.connection``).
            topic: The registry's topic (``settings.topics.schemas``).
            replication_factor: Replicas of the topic when this log creates it
                (``settings.kafka.replication_factor``; None: the smaller of 3 and the brokers).
            min_insync_replicas: Its ``min.insync.replicas`` (None: the factor less one, at
                least 1), so that an acknowledged write survives the loss of a broker.
            timeout_s: How long creating the topic or taking the lead may take.
            write_timeout_s: How long one write (a transaction) may take.
        """
        self._kafka = kafka
        self._topic = topic
        self._replication_factor = replication_factor
        self._min_insync_replicas = min_insync_replicas
        self._timeout_s = timeout_s
        self._write_timeout_s = write_timeout_s
        self._producer: Producer | None = None
        self._producer_lock = threading.Lock()
        self._prober: Consumer | None = None
        self._prober_lock = threading.Lock()

    @property
    def topic(self) -> str:
        """The topic this log lives in."""
        return self._topic

    @property
    def transactional_id(self) -> str:
        """The writer's id, shared by every instance on this topic, so that each fences the last."""
        return f"schema-registry-writer-{self._topic}"

    def config(self, **extra: Any) -> dict[str, Any]:
        """A client configuration for this log's cluster."""
        return self._kafka.client_config(**extra)

    def ensure_topic(self) -> None:
        """Create the topic (1 partition, compacted, replicated as configured) unless it exists.

        Raises:
            StoreError: Kafka is unreachable or refused, or the replication does not fit it
                (then its cause is a :class:`~featurestore.errors.ConfigurationError`).
        """
        admin = create_client(AdminClient, self.config())
        spec = TopicSpec(self._topic, 1, {"cleanup.policy": "compact"})
        try:
            created = ensure_topics(
                admin,
                [spec],
                replication_factor=self._replication_factor,
                min_insync_replicas=self._min_insync_replicas,
                timeout_s=self._timeout_s,
            )
        except FeatureStoreError as exc:
            raise StoreError(f"Cannot create topic {self._topic}: {exc}") from exc
        except Exception as exc:  # a concurrent.futures timeout
            raise StoreError(f"Cannot create topic {self._topic}: {exc!r}") from exc
        if created:
            logger.info("created schema log topic %s", self._topic)

    # -- reading -------------------------------------------------------------------------------

    def read_all(self) -> Iterator[LogRecord]:
        """Every committed record from offset 0 up to the committed end when reading starts.

        Raises:
            StoreError: Kafka is unreachable or the end is not reached in time.
        """
        end = self.end_position()
        if end == 0:
            return
        records: list[LogRecord] = []
        done = threading.Event()

        def on_batch(batch: list[LogRecord], position: int) -> None:
            records.extend(batch)
            if position >= end:
                done.set()

        tail = LogTail(self, on_batch)
        tail.start()
        try:
            if not done.wait(self._timeout_s):
                raise StoreTimeoutError(
                    f"Did not reach the end ({end}) of topic {self._topic} in {self._timeout_s}s"
                )
        finally:
            tail.stop()
        yield from records

    def end_position(self, timeout_s: float | None = None) -> int:
        """The committed end of the log: every acknowledged write lies before it.

        Raises:
            StoreError: Kafka did not answer in time.
        """
        with self._prober_lock:
            if self._prober is None:
                self._prober = create_client(
                    Consumer,
                    self.config(
                        **{
                            "group.id": f"schema-registry-prober-{uuid.uuid4()}",
                            "isolation.level": "read_committed",
                            "enable.auto.commit": False,
                        }
                    ),
                )
            prober = self._prober
        try:
            _low, high = prober.get_watermark_offsets(
                TopicPartition(self._topic, 0),
                timeout=self._timeout_s if timeout_s is None else timeout_s,
                cached=False,
            )
        except KafkaException as exc:
            raise StoreError(f"Cannot read the end of topic {self._topic}: {exc}") from exc
        return int(high or 0)

    # -- writing (the leader only) -------------------------------------------------------------

    def open_writer(self, first: LogRecord) -> int:
        """Take the writer's role, fencing any earlier holder, and write ``first``.

        ``first`` (the new leader's own record) goes in the first transaction; returns the
        position after it.

        Raises:
            StoreError: Kafka refused or did not answer in time.
        """
        self.close_writer()
        producer = create_client(
            Producer,
            self.config(
                **{
                    "transactional.id": self.transactional_id,
                    "transaction.timeout.ms": max(int(self._write_timeout_s * 1000) * 2, 10_000),
                    "linger.ms": 0,
                }
            ),
        )
        try:
            producer.init_transactions(self._timeout_s)
        except KafkaException as exc:
            raise StoreError(
                f"Kafka did not give the writer's role on {self._topic}: {exc}"
            ) from exc
        with self._producer_lock:
            self._producer = producer
        return self.append([first])

    @property
    def writing(self) -> bool:
        """Whether this instance holds the writer's role (it may since have been fenced)."""
        return self._producer is not None

    def close_writer(self) -> None:
        """Give up the writer's role (a deposed leader); what it had not committed is lost."""
        with self._producer_lock:
            self._producer = None

    def append(self, records: Sequence[LogRecord]) -> int:
        """Write the records in one transaction; return the position after them once committed.

        Raises:
            NotLeaderError: This instance does not hold the writer's role (any more).
            StoreError: Kafka refused the transaction; nothing of it is visible.
            StoreTimeoutError: The commit was not confirmed in time; it may still land.
        """
        with self._producer_lock:
            producer = self._producer
        if producer is None:
            raise NotLeaderError("This instance is not the leader (any more)")
        offsets: list[int] = []
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, message: object) -> None:
            if error is not None:
                failures.append(str(error))
            else:
                offsets.append(int(message.offset()))  # type: ignore[attr-defined]

        try:
            producer.begin_transaction()
            for record in records:
                key, value = encode_record(record)
                producer.produce(self._topic, key=key, value=value, on_delivery=on_delivery)
            producer.commit_transaction(self._write_timeout_s)
        except (KafkaException, BufferError) as exc:
            self._after_failed_transaction(producer, exc)
        if failures or not offsets:
            raise StoreError(
                f"Kafka refused the write to topic {self._topic}: {'; '.join(failures)}"
            )
        return max(offsets) + 1

    def _after_failed_transaction(self, producer: Producer, exc: Exception) -> None:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        fenced = error is not None and (
            error.fatal() or error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)
        )
        if fenced:
            self.close_writer()
            raise NotLeaderError(
                "Another instance took the lead while this write was made; it was not applied"
            ) from exc
        if error is not None and error.txn_requires_abort():
            try:
                producer.abort_transaction(self._write_timeout_s)
            except KafkaException:
                self.close_writer()  # the next leader's init aborts it for good
            raise StoreError(
                f"Kafka refused the write to topic {self._topic}: {error.str()}"
            ) from exc
        if error is not None and error.code() == KafkaError._TIMED_OUT:
            self.close_writer()
            raise StoreTimeoutError(
                f"Kafka did not confirm the write to {self._topic} in "
                f"{self._write_timeout_s}s; it may still land"
            ) from exc
        self.close_writer()
        raise StoreError(f"Kafka refused the write to topic {self._topic}: {exc}") from exc

    def close(self) -> None:
        """Drop the writer and the prober."""
        self.close_writer()
        with self._prober_lock:
            prober, self._prober = self._prober, None
        if prober is not None:
            prober.close()


class LogThread(ABC):
    """Work on the log in a daemon thread of its own, from :meth:`start` until :meth:`stop`.

    :meth:`_run` checks ``_stopping`` between its waits on Kafka.
    """

    join_s = 10.0
    """How long :meth:`stop` waits for the thread (its longest wait on Kafka, and some)."""

    def __init__(self, name: str) -> None:
        """A thread called ``name``, not started."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (at most :attr:`join_s`)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.join_s)

    @abstractmethod
    def _run(self) -> None:
        """The thread's work."""


class LogTail(LogThread):
    """Follows the log from the beginning in a thread of its own.

    Each batch of committed records goes to ``on_batch`` with the position after it; reaching the
    end also reports the position, which lies past the transactions' commit markers.
    ``on_error`` hears of broker errors (connections lost: the consumer keeps retrying) and, with
    ``fatal`` True, of a record it cannot read (then the tail stops: nothing after it can be
    applied in order).
    """

    def __init__(
        self,
        log: KafkaRecordLog,
        on_batch: OnBatch,
        on_error: Callable[[str, bool], None] | None = None,
    ) -> None:
        """Follow ``log``, handing each batch to ``on_batch`` and each failure to ``on_error``."""
        self._log = log
        self._on_batch = on_batch
        self._on_error = on_error
        super().__init__("schema-log-tail")

    def _run(self) -> None:
        def error_cb(error: KafkaError) -> None:
            if self._on_error is not None:
                self._on_error(error.str(), False)

        consumer = create_client(
            Consumer,
            self._log.config(
                **{
                    "group.id": f"schema-registry-tail-{uuid.uuid4()}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed",
                    "fetch.wait.max.ms": 50,
                    "error_cb": error_cb,
                }
            ),
        )
        try:
            consumer.assign([TopicPartition(self._log.topic, 0, OFFSET_BEGINNING)])
            position = 0
            while not self._stopping.is_set():
                messages = consumer.consume(500, 0.2)
                records: list[LogRecord] = []
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            position = max(position, int(message.offset() or 0))
                        elif self._on_error is not None:
                            self._on_error(error.str(), False)
                        continue
                    position = max(position, int(message.offset() or 0) + 1)
                    record = decode_record(message.key() or b"", message.value())
                    if record is not None:
                        records.append(record)
                if messages:
                    self._on_batch(records, position)
        except StoreError as exc:  # an unreadable record: nothing after it can be applied
            logger.error("the schema log tail stopped: %s", exc)
            if self._on_error is not None:
                self._on_error(str(exc), True)
        finally:
            consumer.close()
