"""One Kafka partition's step: its next records and its views' states in; rows, dead letters out.

Events are keyed by entity, so a Kafka partition holds a fixed set of entities and an entity's
events are in one partition, in log order. The step is the whole of the per-partition work,
free of I/O: decode each record with its writer schema once, and for each view skip what its
state has already applied (a replayed batch, or the part of the log a view added later has not
reached yet) and apply the rest to its engine (:mod:`processors.features`). Dead letters are
sent for the records no view had applied before, so a view catching up does not send them
again. The stream and the backfill both run it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import pyarrow as pa

from featurestore.errors import ConfigurationError
from processors.decode import DeadLetter
from processors.decode import EventDecoder
from processors.decode import KafkaRecords
from processors.decode import decode_records
from processors.features import EventChunk
from processors.features import FeatureOutput
from processors.features import PartitionFeatureState
from processors.features import StateCounts
from processors.features import ViewChain
from processors.features import feed_chain
from processors.features import process_chain
from processors.features.plan import SourcePlan
from processors.features.state import NO_OPEN_TILE
from processors.tables import latest_per_entity
from processors.tables import rows_table

__all__ = ["PartitionState", "StepResult", "held_by", "run_step"]

_FORMAT = 2


@dataclass
class PartitionState:
    """Everything a processor knows about one view on one Kafka partition of its topic."""

    next_offset: int = 0
    """The first offset not applied yet: records before it are skipped."""
    features: PartitionFeatureState = field(default_factory=PartitionFeatureState)
    fingerprint: str = ""
    """What the view computed when this state was stored (:meth:`MaterializedViews.fingerprint`)."""
    downstream: list[PartitionFeatureState] = field(default_factory=list)
    """A chained view's later stages (:class:`ViewChain`), after :attr:`features`, the first."""
    shared: bool = False
    """A chained view that reads its upstream view's rows of each step: only its last stage's
    state is its own (it had computed the stages before by itself while catching up)."""
    _retired: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        """The first stage's events are journaled (:meth:`take_new_events`)."""
        self.features.journal = True

    def share_upstream(self) -> None:
        """From now on the upstream view computes the stages before the last: drop them."""
        if self.shared:
            return
        self._retired = list(self.features.entities)
        self.features = PartitionFeatureState(journal=True)
        self.downstream[:-1] = [PartitionFeatureState() for _ in self.downstream[:-1]]
        self.shared = True

    def stages(self, count: int) -> list[PartitionFeatureState]:
        """The state of each of a chain's ``count`` stages (new ones start empty)."""
        while len(self.downstream) < count - 1:
            self.downstream.append(PartitionFeatureState())
        return [self.features, *self.downstream[: count - 1]]

    def to_bytes(self) -> bytes:
        """A versioned form of the engine's state without the open tiles' events.

        The events go to the journal: :meth:`take_new_events` after each step,
        :meth:`from_bytes` takes them back. A chained view's later stages keep no events
        (they have no ids and no running rows), so they are stored whole, after the first.
        """
        first = self.features.to_bytes(events=False)
        later = [s.to_bytes() for s in self.downstream]
        doc: dict[str, Any] = {"format": _FORMAT, "fingerprint": self.fingerprint}
        if later:
            doc["stages"] = [len(first), *(len(s) for s in later)]
        if self.shared:
            doc["shared"] = True
        return json.dumps(doc).encode() + b"\n" + first + b"".join(later)

    @classmethod
    def from_bytes(
        cls,
        next_offset: int,
        data: bytes | None,
        chunks: Iterable[EventChunk] = (),
        *,
        fingerprint: str = "",
        former_fingerprint: str = "",
        view: str = "",
    ) -> PartitionState:
        """Read what :meth:`to_bytes` wrote (``None``: nothing yet) and the journaled events.

        ``fingerprint`` is the view's now; a state stored under ``former_fingerprint`` (the same
        meaning, hashed the way an earlier release did) continues too, and is stored again
        under ``fingerprint``.

        Raises:
            ConfigurationError: the state was stored for another definition of the view.
        """
        if not data:
            return cls(next_offset, PartitionFeatureState.from_bytes(None, chunks), fingerprint)
        head, _, body = data.partition(b"\n")
        try:
            doc: dict[str, Any] = json.loads(head)
        except json.JSONDecodeError:
            doc = {}
        if doc.get("format") != _FORMAT:
            raise ValueError(
                "the stored processor state is of an older format; run "
                "`featurestore processors reset` (the tables are rebuilt from the log)"
            )
        if fingerprint and doc.get("fingerprint") not in (fingerprint, former_fingerprint or None):
            raise ConfigurationError(
                f"feature view {view!r} changed since its rows were computed: apply the change"
                f" as a new view (for example {view}_v2) so that the old one keeps serving"
                " until the new one has caught up, or drop its table and run"
                " `featurestore processors reset`"
            )
        sizes = doc.get("stages") or [len(body)]
        parts, at = [], 0
        for size in sizes:
            parts.append(body[at : at + size])
            at += size
        return cls(
            next_offset,
            PartitionFeatureState.from_bytes(parts[0], chunks),
            fingerprint,
            [PartitionFeatureState.from_bytes(p) for p in parts[1:]],
            bool(doc.get("shared")),
        )

    def counts(self) -> StateCounts:
        """What the view's state holds, every stage of its chain together."""
        total = self.features.counts()
        for stage in self.downstream:
            total += stage.counts()
        return total

    def take_new_events(self) -> list[EventChunk]:
        """Events accepted into open tiles since the last call: the journal's new chunks."""
        return self.features.take_new_events()

    def horizons(self) -> dict[str, int]:
        """Per entity, its oldest tile whose chunks are still read: earlier ones can go."""
        retired = {name: NO_OPEN_TILE for name in self._retired}
        self._retired = []
        for stage in self.downstream:  # stored whole, never journaled: nothing of theirs to drop
            stage.forgotten.clear()
        return {**retired, **self.features.horizons()}


def held_by(states: Mapping[str, PartitionState]) -> StateCounts:
    """What the states of a partition's views hold together (after a step: for its summary)."""
    total = StateCounts()
    for state in states.values():
        total += state.counts()
    return total


@dataclass(frozen=True)
class StepResult:
    """What one step wrote down for the stores."""

    rows: dict[str, pa.Table]
    """Per view: its rows, one per (entity, event time): the last emission of each."""
    latest: dict[str, pa.Table]
    """Per view: each entity's latest row of this step (what Redis gets)."""
    dead: list[DeadLetter]
    records: int
    """Records no view had applied before."""
    skipped: int
    """Records every view had already applied (a replay)."""
    duplicates: int
    late: int
    decode_s: float
    machine_s: float

    @property
    def row_count(self) -> int:
        """Rows of every view."""
        return sum(t.num_rows for t in self.rows.values())


def run_step(
    records: KafkaRecords,
    states: Mapping[str, PartitionState],
    decoder: EventDecoder,
    plans: Mapping[str, ViewChain],
    source: SourcePlan,
) -> StepResult:
    """Apply one partition's next records (in log order) to each view's state, in place.

    Args:
        records: the partition's records, in log order.
        states: per view, its state (updated in place).
        decoder: decodes the records into ``source``'s fields.
        plans: per view, the stages that compute it.
        source: the fields of every view together (what records are decoded into).

    Raises:
        ValueError: the records span several partitions.
    """
    began = time.perf_counter()
    if len(records) and records.partition[0] != records.partition[-1]:
        raise ValueError("a step takes the records of one Kafka partition")
    oldest = min(s.next_offset for s in states.values())
    newest = max(s.next_offset for s in states.values())
    first = int(np.searchsorted(records.offset, oldest, side="left"))
    fresh = records.slice(first)
    decoded = decode_records(fresh, decoder, source)
    decoded_at = time.perf_counter()
    events = decoded.events
    dead = [d for d in decoded.dead if d.offset >= newest]
    late: dict[int, int] = {}
    duplicates: set[int] = set()
    rows: dict[str, pa.Table] = {}
    latest: dict[str, pa.Table] = {}
    partition = int(records.partition[0]) if len(records) else 0
    starts = {name: s.next_offset for name, s in states.items()}
    outputs: dict[str, FeatureOutput] = {}
    for name, plan in plans.items():  # upstream views first
        state = states[name]
        chosen = np.flatnonzero(events.offset >= state.next_offset)
        # In steady state every view is at the same offset: no copy of the events.
        mine = events if len(chosen) == len(events) else events.take(chosen)
        upstream = plan.stages[-2].views[0].name if len(plan.stages) > 1 else None
        if upstream is not None and upstream in outputs and starts[upstream] == starts[name]:
            state.share_upstream()
            out = feed_chain(plan, state.stages(len(plan.stages)), outputs[upstream])
        elif state.shared:
            raise ConfigurationError(
                f"feature view {name!r} reads the rows of {upstream!r}, whose state is behind"
                f" its own (offset {starts.get(upstream or '')} against {starts[name]}); run"
                " `featurestore processors reset` to compute both again from the log"
            )
        else:
            out = process_chain(plan, state.stages(len(plan.stages)), mine)
        outputs[name] = out
        for i in out.late.tolist():
            at = int(chosen[i])
            if int(events.offset[at]) >= newest:
                late[int(events.offset[at])] = at
        duplicates.update(int(events.offset[chosen[i]]) for i in out.duplicates.tolist())
        table = rows_table(
            out.rows[name], plan.view, join_key=plan.join_key, topic=source.topic,
            partition=partition,
        )  # fmt: skip
        rows[name] = table
        latest[name] = latest_per_entity(table, plan.join_key)
        if len(fresh):
            state.next_offset = max(state.next_offset, int(fresh.offset[-1]) + 1)
    dead += [decoded.dead_letter(at, "late") for at in late.values()]
    dead.sort(key=lambda d: d.offset)
    return StepResult(
        rows=rows,
        latest=latest,
        dead=dead,
        records=int(np.sum(fresh.offset >= newest)) if len(fresh) else 0,
        skipped=len(records) - (int(np.sum(fresh.offset >= newest)) if len(fresh) else 0),
        duplicates=len([o for o in duplicates if o >= newest]),
        late=len(late),
        decode_s=decoded_at - began,
        machine_s=time.perf_counter() - decoded_at,
    )
