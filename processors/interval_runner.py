"""Redis every batch, PostgreSQL every interval: the Kafka engine's runner.

:class:`processors.partition_job.PartitionRunner` commits a partition's rows and state after
every batch, and the engine's next poll waits for that: an event waits for the batch before
it to be stepped, written to Redis, its state serialised and journaled, its rows copied and
the transaction committed. Here each batch is stepped and written to Redis at once, and each
partition's rows and state are committed at most every ``commit_s`` by a thread of the runner
while the next batches are stepped (``bench/RESULTS.md``, processors: why).

Why it stays exactly-once (``processors/README.md``):

- PostgreSQL holds the rows and the state of the same offsets: one commit writes the rows of
  every step since the previous commit and the states after the last of them, in one
  transaction, fenced by the partition's epoch and checked against the offsets the previous
  commit stored.
- Redis may be ahead of PostgreSQL, as it already was within a batch: after a crash the log
  is replayed from the stored state and the deterministic step computes the same rows again,
  which Redis takes again (write-if-newer).
- After a failure (a commit's or a step's), the partition's live state is dropped and read
  again from the state table, and the records since the last successful commit, which the
  runner keeps until a commit covers them, are stepped again.
- Dead letters are sent, and acknowledged, inside the commit, before the transaction commits:
  at least once, never lost.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Collection
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field

import pyarrow as pa

from featurestore.resilience import Retrier
from processors.decode import DeadLetter
from processors.decode import KafkaRecords
from processors.features import EventChunk
from processors.metrics import observations
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionResources
from processors.partition_job import StageTimer
from processors.partition_job import dropped_on_failure
from processors.partition_job import pack_tables
from processors.partition_job import unpack_tables
from processors.state_table import StateKey
from processors.step import PartitionState
from processors.step import held_by
from processors.summary import PartitionSummary
from processors.tables import last_emissions
from processors.tables import latest_per_entity

__all__ = ["IntervalRunner", "commit_due"]

logger = logging.getLogger(__name__)

_MOST_PENDING = 500_000
"""Records stepped but not yet committed, per partition, before a step waits for its commit."""
_COMMIT_THREADS = 8
_GOLDEN = 0.6180339887498949
"""Spreads the partitions' commit phases over the interval, however many a runner has."""


def commit_due(since: float, now: float, interval: float, phase: float) -> bool:
    """Whether a partition whose oldest uncommitted step ran at ``since`` commits ``now``.

    Each partition commits at its own ``phase`` of every ``interval`` (the first boundary
    ``phase + k * interval`` after ``since``), not ``interval`` after its oldest step: the
    partitions of one batch step together, so with the latter they would all commit in the
    same cycle, and that cycle would carry every partition's serialisation and COPY under the
    one GIL (a tail of the freshness: ``bench/RESULTS.md``, processors). No step waits more
    than ``interval`` for its commit.
    """
    boundary = phase + math.ceil((since - phase) / interval) * interval
    return now >= boundary


class _StateMovedError(Exception):
    """The state rows are not where the last commit left them: someone else committed."""


@dataclass
class _Commit:
    """What one commit writes, taken between steps so that the next steps may go on."""

    base: dict[str, int]
    """Each view's next offset as the previous commit stored it (the rows must still say so)."""
    next_offsets: dict[str, int]
    states: dict[str, bytes]
    online: dict[str, bytes]
    events: dict[str, list[EventChunk]]
    horizons: dict[str, dict[str, int]]
    rows: dict[str, pa.Table]
    dead: list[DeadLetter]
    covers: int
    """How many of the lane's kept batches this commit covers."""
    seconds: dict[str, float] = field(default_factory=dict)
    rows_by_view: dict[str, int] = field(default_factory=dict)
    state_bytes: int = 0


@dataclass
class _Lane:
    """One partition: its connections, live state, and what the next commit will write."""

    partition: int
    keys: dict[str, StateKey]
    res: PartitionResources | None = None
    states: dict[str, PartitionState] | None = None
    base: dict[str, int] = field(default_factory=dict)
    kept: list[KafkaRecords] = field(default_factory=list)
    """The batches stepped since the last successful commit (stepped again after a failure)."""
    rows: dict[str, list[pa.Table]] = field(default_factory=dict)
    latest: dict[str, list[pa.Table]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    pending: int = 0
    """Records stepped since the last commit was taken."""
    since: float | None = None
    """When the oldest step not yet taken by a commit ran (monotonic seconds)."""
    phase: float = 0.0
    """Where in each interval this partition commits (:func:`commit_due`)."""
    repairs: list[bytes] = field(default_factory=list)
    """The online rows the loaded states were stored with, to write to Redis again."""
    inflight: Future[_Commit] | None = None
    done: list[_Commit] = field(default_factory=list)
    """Commits that ended since the last summary (their timings go into the next one)."""

    def clear_pending(self) -> None:
        """Forget the steps' output (a commit took it, or the live state was dropped)."""
        self.rows, self.latest, self.dead = {}, {}, []
        self.pending, self.since = 0, None


class IntervalRunner:
    """Runs a job's partitions like :class:`PartitionRunner`, committing every ``commit_s``.

    :meth:`run` is called for one partition's batch at a time (different partitions may run in
    parallel threads); :meth:`flush` commits what is due on partitions that got no records, and
    :meth:`close` commits everything before closing.
    """

    def __init__(self, job: PartitionJob, retrier: Retrier | None, commit_s: float) -> None:
        """Run ``job`` (a stream's: stateful, without hooks), committing every ``commit_s``."""
        if not job.stateful or job.hook_view is not None:
            raise ValueError("the interval runner runs a stream's job without hooks")
        if commit_s <= 0:
            raise ValueError(f"commit interval {commit_s} s: give a time > 0")
        self.job = job
        self.retrier = retrier
        self.commit_s = commit_s
        self._lanes: dict[int, _Lane] = {}
        self._lock = threading.Lock()
        self._commits = ThreadPoolExecutor(_COMMIT_THREADS, thread_name_prefix="commit")

    def run(self, records: KafkaRecords) -> PartitionSummary:
        """Step one partition's records and write their rows to Redis; commit when due.

        A transient failure is retried with :attr:`retrier` (the partition's state is read
        again and the records since its last commit are stepped again); anything else raises.
        """
        partition = int(records.partition[0])
        return self._call(partition, records)

    def flush(
        self, force: bool = False, *, retry: bool = True, skip: Collection[int] = ()
    ) -> list[PartitionSummary]:
        """Commit what is due (every step not committed yet: ``force``) on every partition.

        ``retry``: wait out a transient failure with :attr:`retrier` (False: raise it).
        ``skip``: partitions about to be stepped, which commit from their own step once their
        rows are in Redis (here, the commit's preparation would hold up every partition's
        batch).
        """
        with self._lock:
            lanes = [lane for p, lane in self._lanes.items() if p not in skip]
        return [
            self._call(lane.partition, None, force=force, retry=retry)
            for lane in lanes
            if lane.pending or lane.inflight is not None or (lane.states is None and lane.kept)
        ]

    def close(self, commit: bool = True) -> None:
        """Commit every partition's steps (``commit``), then close every connection.

        A commit that fails here is given up, not retried: what it held is in the log after
        the stored offsets, and the next start computes it again.
        """
        try:
            if commit:
                self.flush(force=True, retry=False)
        except Exception as exc:  # stopping: the log keeps what was not committed
            logger.warning(
                "the steps since the last commit were not committed (%s); the next start "
                "computes them again from the log", exc,
            )  # fmt: skip
        finally:
            for lane in list(self._lanes.values()):
                self._drop(lane)
            self._commits.shutdown()

    def _call(
        self, partition: int, records: KafkaRecords | None, force: bool = False,
        retry: bool = True,
    ) -> PartitionSummary:  # fmt: skip
        if self.retrier is None or not retry:
            return self._run_once(partition, records, force)
        return self.retrier.call(
            lambda: self._run_once(partition, records, force), f"partition {partition}"
        )

    def _lane(self, partition: int) -> _Lane:
        with self._lock:
            lane = self._lanes.get(partition)
            if lane is None:
                job = self.job
                keys = {
                    name: StateKey(
                        job.processor, job.views.definitions.project, job.topic, partition, name
                    )
                    for name in sorted(job.views.plans)
                }
                phase = (partition * _GOLDEN) % 1.0 * self.commit_s
                lane = self._lanes[partition] = _Lane(partition, keys, phase=phase)
            return lane

    def _run_once(
        self, partition: int, records: KafkaRecords | None, force: bool
    ) -> PartitionSummary:
        lane = self._lane(partition)
        for attempt in range(2):
            try:
                with dropped_on_failure(partition, lambda: self._drop(lane)):
                    return self._step(lane, records, force)
            except _StateMovedError:  # dropped: the second attempt reloads the state
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _step(self, lane: _Lane, records: KafkaRecords | None, force: bool) -> PartitionSummary:
        job = self.job
        timer = StageTimer()
        summary = PartitionSummary(partition=lane.partition)
        self._reap(lane, wait=lane.pending >= _MOST_PENDING)
        batches = [] if records is None else [records]
        if lane.states is None:
            self._load(lane)
            timer.lap("state_s")
            summary.online_rows += self._repair(lane)
            timer.lap("redis_s")
            batches = [*lane.kept, *batches]  # stepped again: the live state restarts there
        assert lane.states is not None and lane.res is not None
        for i, batch in enumerate(batches):
            step = job.step(batch, lane.states)
            timer.add("decode_s", step.decode_s)
            timer.add("machine_s", step.machine_s)
            timer.lap(None)
            written = job.write_online(lane.res, step.latest)
            timer.lap("redis_s")
            for name, table in step.rows.items():
                if table.num_rows:
                    lane.rows.setdefault(name, []).append(table)
                    lane.latest.setdefault(name, []).append(step.latest[name])
            lane.dead += step.dead
            lane.pending += len(batch)
            if lane.since is None:
                lane.since = time.monotonic()
            if batch is records:
                lane.kept.append(records)
            if i == len(batches) - 1 and records is not None:
                summary.records, summary.skipped = step.records, step.skipped
                summary.duplicates, summary.late = step.duplicates, step.late
                summary.dead_letters = len(step.dead)
                summary.rows_by_view = {n: t.num_rows for n, t in step.rows.items()}
                summary.rows = sum(summary.rows_by_view.values())
                summary.online_rows += written
                online = self.job.online_tables(step.latest)
                summary.observed = observations(batch, step.dead, online, time.time())
                held = held_by(lane.states)
                summary.state_tiles, summary.state_open_events = held.tiles, held.open_events
        if force:  # the commit in flight first: the steps since it go in the one below
            self._settle(lane)
        due = lane.since is not None and (
            force or commit_due(lane.since, time.monotonic(), self.commit_s, lane.phase)
        )
        if due and lane.inflight is None:
            self._submit(lane)
            timer.lap("state_s")
        if force:
            self._settle(lane)
        if records is not None:  # commits that ended are reported with the partition's batch
            for commit in lane.done:
                for name, seconds in commit.seconds.items():
                    timer.add(name, seconds)
                summary.state_bytes += commit.state_bytes
            lane.done = []
        summary.seconds = timer.seconds
        return summary

    def _load(self, lane: _Lane) -> None:
        """Read the partition's states (each view's row locked for the read only)."""
        job = self.job
        lane.res = res = PartitionResources(job)
        states: dict[str, PartitionState] = {}
        lane.repairs = []
        with res.conn.transaction(), res.conn.cursor() as cur:
            job.hold_partition(cur, lane.partition)
            for name, key in lane.keys.items():  # in name order: two processors never deadlock
                next_offset = key.lock(cur)
                stored = key.load(cur)
                if stored.online:
                    lane.repairs.append(stored.online)
                states[name] = PartitionState.from_bytes(
                    next_offset, stored.state, stored.chunks,
                    fingerprint=job.views.fingerprint(name),
                    former_fingerprint=job.views.former_fingerprint(name), view=name,
                )  # fmt: skip
                lane.base[name] = next_offset
        lane.states = states

    def _repair(self, lane: _Lane) -> int:
        """Write the rows the last commit kept to Redis again (write-if-newer: harmless)."""
        assert lane.res is not None
        blobs, lane.repairs = lane.repairs, []
        return sum(self.job.write_online(lane.res, unpack_tables(b)) for b in blobs)

    def _submit(self, lane: _Lane) -> None:
        """Take what the steps since the last commit produced, and commit it on a thread."""
        assert lane.states is not None and lane.res is not None
        join_key = self.job.views.join_key
        states = lane.states
        commit = _Commit(
            base=dict(lane.base),
            next_offsets={name: s.next_offset for name, s in states.items()},
            states={name: s.to_bytes() for name, s in states.items()},
            online={name: self._latest_blob(lane, name) for name in states},
            events={name: s.take_new_events() for name, s in states.items()},
            horizons={name: s.horizons() for name, s in states.items()},
            rows={name: last_emissions(t, join_key) for name, t in lane.rows.items()},
            dead=lane.dead,
            covers=len(lane.kept),
        )
        lane.clear_pending()
        lane.inflight = self._commits.submit(self._commit, lane, lane.res, commit)

    def _latest_blob(self, lane: _Lane, name: str) -> bytes:
        """Each entity's latest row of ``name`` since the last commit, kept with the state."""
        tables = lane.latest.get(name)
        if not tables:
            return b""
        join_key = self.job.views.join_key
        latest = latest_per_entity(last_emissions(tables, join_key), join_key)
        return pack_tables({name: latest})

    def _commit(self, lane: _Lane, res: PartitionResources, commit: _Commit) -> _Commit:
        """One transaction: the rows of the steps since the last commit and the states after."""
        job = self.job
        timer = StageTimer()
        with res.conn.transaction(), res.conn.cursor() as cur:
            job.hold_partition(cur, lane.partition)
            for name, key in lane.keys.items():
                stored = key.lock(cur)
                if stored != commit.base[name]:
                    raise _StateMovedError(
                        f"partition {lane.partition}, view {name}: stored next offset {stored}, "
                        f"not {commit.base[name]} as this runner last committed"
                    )
            timer.lap("state_s")
            job.send_dead_letters(res, commit.dead)
            timer.lap("dead_letters_s")
            commit.rows_by_view = job.write_offline(res, cur, commit.rows)
            timer.lap("postgres_s")
            for name, key in lane.keys.items():
                blob = commit.states[name]
                commit.state_bytes += len(blob)
                key.save(
                    cur, commit.next_offsets[name], blob, commit.online[name],
                    commit.events[name], commit.horizons[name],
                )  # fmt: skip
            timer.lap("state_s")
        timer.lap("postgres_s")  # the commit
        commit.seconds = timer.seconds
        return commit

    def _reap(self, lane: _Lane, wait: bool = False) -> None:
        """Take a finished commit in: forget the batches it covers, or raise its failure."""
        future = lane.inflight
        if future is None or not (wait or future.done()):
            return
        lane.inflight = None
        commit = future.result()  # a failed commit raises here: the caller drops the lane
        del lane.kept[: commit.covers]
        lane.base = dict(commit.next_offsets)
        lane.done.append(commit)

    def _settle(self, lane: _Lane) -> None:
        """Wait for the partition's commit in flight, and take it in."""
        self._reap(lane, wait=True)

    def _drop(self, lane: _Lane) -> None:
        """Forget the live state and the connections (kept batches stay, to be stepped again)."""
        if lane.inflight is not None:
            with contextlib.suppress(Exception):  # its failure is why we drop, or is the next
                self._reap(lane, wait=True)
            lane.inflight = None
        lane.states = None
        lane.clear_pending()
        lane.done = []
        res, lane.res = lane.res, None
        if res is not None:
            with contextlib.suppress(Exception):  # already failing: the original error matters
                res.close()
