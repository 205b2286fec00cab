"""Several registry instances on one log: one leader writes, every instance reads.

Who leads is decided by Kafka's group membership, as Confluent's registry does it: every
instance that may lead joins one consumer group subscribed to the log's single partition, and the
member the partition is assigned to leads. A leader that dies stops heartbeating and loses the
partition after the group's session timeout (6 s); one that stops cleanly leaves the group at
once. The sticky assignor keeps the partition where it is when instances join.

Taking the lead is fenced in the log, not trusted to the group: the new leader first takes the
writer's transactional id (:meth:`KafkaRecordLog.open_writer`), which aborts whatever the last
leader had not committed and makes its later commits fail, then writes its ``LEADER`` record and
waits until its own tail has read that record back. Everything committed before is then applied,
so the ids it hands out continue from the highest ever committed: an id is never given twice,
whichever instances die. A leader does not trust its own memory either: its writes are applied
when its tail reads them back, in log order, as on every follower.

A follower forwards writes to the URL of the last ``LEADER`` record and, before answering, waits
until its own tail has applied the position the leader reported. A read on a follower first asks
Kafka for the committed end of the log and waits until it has applied that far (a read barrier):
a client that wrote through any instance reads its write from any other.

While Kafka is away the instance keeps serving the reads it can answer from what it has applied,
its health says why it is not serving, writes get 503 (Confluent's clients retry those), and it
resumes by itself when Kafka answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition

from featurestore.errors import FeatureStoreError
from featurestore.kafka_connection import create_client
from featurestore.schema_registry.errors import NotLeaderError
from featurestore.schema_registry.errors import StoreError
from featurestore.schema_registry.kafka_log import KafkaRecordLog
from featurestore.schema_registry.kafka_log import LogTail
from featurestore.schema_registry.kafka_log import LogThread
from featurestore.schema_registry.records import LeaderEntry
from featurestore.schema_registry.records import LeaderKey
from featurestore.schema_registry.records import LogRecord
from featurestore.schema_registry.registry import SchemaRegistry

__all__ = ["ClusterNode", "Health", "StandaloneNode"]

logger = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 6000
"""The shortest session Kafka allows by default (``group.min.session.timeout.ms``)."""
_BARRIER_TIMEOUT_S = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class Health:
    """Whether the instance serves, and if not why; its role and where the leader is."""

    serving: bool
    reason: str
    leader: bool
    leader_url: str | None
    position: int


class StandaloneNode:
    """One process alone on its log (an in-memory one): always the leader, always current."""

    def __init__(self, registry: SchemaRegistry) -> None:
        """Serve ``registry`` alone."""
        self._registry = registry

    def leader_url(self) -> str | None:
        """None: this instance leads, writes are made here."""
        return None

    async def before_read(self) -> None:
        """Nothing to catch up with."""

    def health(self) -> Health:
        """Always serving."""
        return Health(True, "", True, None, self._registry.position)

    @property
    def position(self) -> int:
        """The position applied (every write is applied when made)."""
        return self._registry.position


class ClusterNode:
    """One instance of the registry among several on one Kafka log."""

    def __init__(
        self,
        registry: SchemaRegistry,
        log: KafkaRecordLog,
        *,
        own_url: str,
        leader_eligible: bool = True,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        """Prepare; :meth:`start` begins.

        Args:
            registry: A registry over ``log`` with ``tailed=True``.
            log: The Kafka log.
            own_url: Where the other instances reach this one.
            leader_eligible: Whether to stand for leader.
            on_fatal: Called with the reason when the instance cannot go on (a configuration
                Kafka refuses, a record it cannot read); the server then stops.
        """
        self._registry = registry
        self._log = log
        self._own_url = own_url.rstrip("/")
        self._eligible = leader_eligible
        self._on_fatal = on_fatal
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        """This process's name in the log's LEADER records (a restart is another instance)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = False
        self._leader = False
        self._holding = False
        self._term = 0
        self._kafka_problem = ""
        self._tail: LogTail | None = None
        self._election: _Election | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the routes ask -------------------------------------------------------------------

    @property
    def position(self) -> int:
        """The log position this instance has applied."""
        return self._registry.position

    def leader_url(self) -> str | None:
        """Where to forward a write; None when this instance leads.

        Raises:
            StoreError: The log is not read yet.
            NotLeaderError: No other instance is known to lead.
        """
        self._require_ready()
        if self._leader and not self._log.writing:
            # A write failed and dropped the writer (Kafka away, or fenced): take it again if the
            # group still gives this instance the lead; until then there is no leader here.
            self._leader = False
            if self._holding:
                self._elected()
        if self._leader:
            return None
        leader = self._registry.state.leader
        if leader is None or leader.instance == self.instance or leader.url == self._own_url:
            raise NotLeaderError(
                "No leader to accept writes at the moment (one is being elected); retry"
            )
        return leader.url

    async def before_read(self) -> None:
        """A read barrier: wait until everything committed when the read came is applied.

        The leader needs none (it applied every write it acknowledged). While Kafka is away a
        follower answers from what it has.

        Raises:
            StoreError: The log is not read yet.
        """
        self._require_ready()
        if self._leader or self._kafka_problem:
            return
        try:
            end = await asyncio.to_thread(self._log.end_position, _BARRIER_TIMEOUT_S)
        except StoreError as exc:
            self._kafka_problem = str(exc)
            return
        await self._registry.wait_applied(end, _BARRIER_TIMEOUT_S)

    def health(self) -> Health:
        """Serving once the log is read and while Kafka answers."""
        if not self._ready:
            reason = "reading the schema log from Kafka"
            if self._kafka_problem:
                reason += f" (Kafka unreachable: {self._kafka_problem})"
        elif self._kafka_problem:
            reason = f"Kafka unreachable: {self._kafka_problem}"
        else:
            reason = ""
        leader = self._registry.state.leader
        url = self._own_url if self._leader else (leader.url if leader else None)
        return Health(not reason, reason, self._leader, url, self._registry.position)

    def _require_ready(self) -> None:
        if not self._ready:
            detail = f": {self._kafka_problem}" if self._kafka_problem else ""
            raise StoreError(f"The registry is still reading its log from Kafka{detail}")

    # -- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin in the background: create the topic, read the log, stand for leader."""
        self._loop = asyncio.get_running_loop()
        self._spawn(self._run())

    async def stop(self) -> None:
        """Leave the group (another instance leads at once) and stop reading."""
        for task in list(self._tasks):
            task.cancel()
        if self._election is not None:
            await asyncio.to_thread(self._election.stop)
        if self._tail is not None:
            await asyncio.to_thread(self._tail.stop)
        await asyncio.to_thread(self._log.close)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        await self._retrying("create the schema log topic", self._log.ensure_topic)
        end = await self._retrying("read the end of the schema log", self._log.end_position)
        self._tail = LogTail(self._log, self._from_tail, self._tail_error)
        self._tail.start()
        while not await self._registry.wait_applied(end, 5.0):
            logger.info("reading the schema log: at %d of %d", self.position, end)
        self._ready = True
        state = self._registry.state
        logger.info(
            "schema registry %s read its log up to %d: %d subjects, max id %d",
            self.instance,
            end,
            len(state.subjects(deleted=True)),
            state.max_id,
        )
        if self._eligible:
            self._election = _Election(
                self._log, self.instance, self._from_election, self._fatal_from_thread
            )
            self._election.start()
        self._spawn(self._watch_kafka())

    async def _retrying(self, what: str, call: Callable[[], T]) -> T:
        delay = 0.5
        while True:
            try:
                result = await asyncio.to_thread(call)
            except StoreError as exc:
                cause = exc.__cause__
                if isinstance(cause, FeatureStoreError) and not cause.retryable:
                    self._fatal(str(exc))
                    raise
                self._kafka_problem = str(exc)
                logger.warning("cannot %s, retrying in %.1fs: %s", what, delay, exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 10.0)
                continue
            self._kafka_problem = ""
            return result

    async def _watch_kafka(self) -> None:
        """Ask Kafka for the log's end every second: the health's view of it."""
        while True:
            try:
                await asyncio.to_thread(self._log.end_position, 3.0)
            except StoreError as exc:
                if not self._kafka_problem:
                    logger.warning("Kafka unreachable: %s", exc)
                self._kafka_problem = str(exc)
            else:
                if self._kafka_problem:
                    logger.info("Kafka answers again")
                self._kafka_problem = ""
            await asyncio.sleep(1.0)

    def _fatal(self, reason: str) -> None:
        logger.error("the schema registry cannot go on: %s", reason)
        if self._on_fatal is not None:
            self._on_fatal(reason)

    # -- from the threads ----------------------------------------------------------------------

    def _from_tail(self, records: list[LogRecord], position: int) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._registry.apply, records, position)

    def _tail_error(self, message: str, fatal: bool) -> None:
        if fatal:
            self._fatal_from_thread(message)
        else:
            logger.warning("schema log: %s", message)

    def _fatal_from_thread(self, reason: str) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._fatal, reason)

    def _from_election(self, elected: bool) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._elected if elected else self._deposed)

    # -- leadership ----------------------------------------------------------------------------

    def _elected(self) -> None:
        self._holding = True
        self._term += 1
        logger.info("schema registry %s was given the lead (term %d)", self.instance, self._term)
        self._spawn(self._take_lead(self._term))

    def _deposed(self) -> None:
        self._holding = False
        self._term += 1
        if self._leader:
            logger.info("schema registry %s no longer leads", self.instance)
        self._leader = False
        self._log.close_writer()

    async def _take_lead(self, term: int) -> None:
        delay = 0.5
        while term == self._term:
            previous = self._registry.state.leader
            entry = LeaderEntry(
                self._own_url, self.instance, (previous.generation + 1) if previous else 1
            )
            try:
                position = await asyncio.to_thread(
                    self._log.open_writer, LogRecord(LeaderKey(), entry)
                )
            except StoreError as exc:
                logger.warning("cannot take the lead yet, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if not await self._registry.wait_applied(position, 30.0):
                logger.warning("the LEADER record was not read back in 30s; taking the lead again")
                continue
            if term == self._term:
                self._leader = True
                logger.info(
                    "schema registry %s leads (generation %d) from position %d, max id %d",
                    self.instance,
                    entry.generation,
                    position,
                    self._registry.state.max_id,
                )
            return


class _Election(LogThread):
    """Membership of the leaders' consumer group, in a thread: holding the partition is leading."""

    join_s = 15.0

    def __init__(
        self,
        log: KafkaRecordLog,
        instance: str,
        on_change: Callable[[bool], None],
        on_fatal: Callable[[str], None],
    ) -> None:
        self._log = log
        self._instance = instance
        self._on_change = on_change
        self._on_fatal = on_fatal
        super().__init__("schema-leader-election")

    def _run(self) -> None:
        try:
            self._elect()
        except Exception as exc:  # a configuration librdkafka refuses
            logger.exception("leader election stopped")
            self._on_fatal(f"leader election stopped: {exc}")

    def _elect(self) -> None:
        consumer = create_client(
            Consumer,
            self._log.config(
                **{
                    "group.id": f"schema-registry-leader-{self._log.topic}",
                    "client.id": self._instance,
                    "partition.assignment.strategy": "cooperative-sticky",
                    "session.timeout.ms": SESSION_TIMEOUT_MS,
                    "heartbeat.interval.ms": 1000,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "latest",
                }
            ),
        )
        holding = False

        def changed(_consumer: Consumer, partitions: list[TopicPartition], gained: bool) -> None:
            nonlocal holding
            ours = any(p.topic == self._log.topic and p.partition == 0 for p in partitions)
            if ours and holding != gained:
                holding = gained
                self._on_change(gained)

        consumer.subscribe(
            [self._log.topic],
            on_assign=lambda c, p: changed(c, p, True),
            on_revoke=lambda c, p: changed(c, p, False),
            on_lost=lambda c, p: changed(c, p, False),
        )
        try:
            while not self._stopping.is_set():
                message = consumer.poll(0.2)
                error = None if message is None else message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    logger.debug("leader election: %s", error.str())
        finally:
            consumer.close()  # leaves the group: another member is given the partition now
            if holding:
                self._on_change(False)
