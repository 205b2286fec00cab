"""Correcting a range: its rows recomputed from the log in event-time order, then replaced.

The stream decides lateness in log order (``processors/README.md``, "The semantics"). Events
appended long after their time (a vendor's trades healed into a gap of the feed) are late for
the running processors: they go to the dead-letter topic with reason ``late`` and their minutes
stay as they were. A correction recomputes every view of the topic, for the given entities, over
``[start, end + reach)`` from every event of theirs the log holds in
``[start - reach, end + reach)``, sorted by event time (ties in log order), and replaces the
stored rows of that range in one transaction: the rows the views would hold had the events
arrived on time. ``reach`` is the longest a view looks back (its windows, slides and tiles,
summed over a chained view's stages), so a row of the range sees every event it aggregates, and
the rows whose windows cover the range are recomputed too.

A correction runs once the processors have applied the whole log as it was when the correction
began (each view's stored ``next_offset`` at the end of each partition): the late events have
then been dead-lettered and the stream writes nothing more into the range. Corrected rows carry
the correction's time as ``created_timestamp``, so a later rewrite of the same key by a replay
loses to them (the upsert keeps the newer row).

Replay from offset 0 takes the healed events as late again (the log order is what it is); run
the correction again after a rebuild (``featurestore ingest heal`` does: a heal finds the gap
again, the vendor's records are copies already in the log, and the correction recomputes).
Corrected rows carry the topic and partition as lineage, and no offset range (their events are
not a contiguous range of the log).

A ``prev()`` or ``prev_nonnull()`` column reads the entity's event before, however long ago: the
entity's first events of the read need events before ``start - reach``. Where the source has
such reads, the log before the records read is read back in slices of Kafka time, each twice as
long as the one before, until every entity has a value for every read (or the log's start, or
``HISTORY_LIMIT`` back); those events only give the reads their values, since every window of
the range begins after them. A value found among the events since a slice's start is the
latest (no record read later can hold a later event time), so records appended late with
older event times do not stand in for it. The online store is not rewritten (a corrected
range is in the past: Redis holds later rows).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pandas as pd
import psycopg
from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.events.replay import end_offsets
from featurestore.kafka_connection import create_client
from featurestore.offline import write_feature_rows
from featurestore.offline.changes import record_change
from featurestore.offline.tables import table_identifier
from processors.decode import KafkaRecords
from processors.decode import decode_records
from processors.decode import decoder_for
from processors.features import EventBatch
from processors.features import PartitionFeatureState
from processors.features import ViewChain
from processors.features import process_chain
from processors.features.frame import compute_frame
from processors.features.frame import frame_batch
from processors.features.plan import SourcePlan
from processors.state_table import STATE_TABLE
from processors.views import MaterializedViews

__all__ = ["HISTORY_LIMIT", "Correction", "correct_range", "reach"]

_CHUNK = 50_000
"""Records decoded at a time while the log is read."""
HISTORY_LIMIT = timedelta(days=7)
"""How far before the reach a correction reads the log for ``prev()`` reads, at most."""


@dataclass
class Correction:
    """What one correction read and wrote."""

    start: datetime
    end: datetime
    """The rows replaced: ``[start, end)`` (the range asked for, extended by the reach)."""
    events: int = 0
    """Events of the entities read from the log (the reach before the range included)."""
    history: int = 0
    """Events before the reach, read for ``prev()`` and ``prev_nonnull()`` only."""
    unseeded: list[str] = field(default_factory=list)
    """Entities some ``prev()`` read found no earlier value for within the history limit."""
    deleted: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)


def reach(views: MaterializedViews) -> timedelta:
    """How far before a row's time its view reads events: the longest of the topic's views."""
    longest = max(sum(stage.horizon_us for stage in chain.stages) for chain in views.plans.values())
    return timedelta(microseconds=longest + views.plan.source.lateness_us)


def correct_range(
    settings: Settings,
    definitions: Definitions,
    topic: str,
    entities: Collection[str],
    start: datetime,
    end: datetime,
    *,
    wait_s: float = 60.0,
    history_limit: timedelta = HISTORY_LIMIT,
) -> Correction:
    """Recompute the views of ``topic`` for ``entities`` over ``[start, end)`` and beyond.

    ``history_limit``: how far before the reach the log is read for ``prev()`` reads at most.

    Raises:
        ValidationError: no entity, or ``end`` not after ``start``.
        ConfigurationError: no view reads ``topic``, or no processor has applied it.
        BackendUnavailableError: the processors did not reach the end of the log within
            ``wait_s``, or Kafka or PostgreSQL is unreachable.
    """
    if not entities:
        raise ValidationError("a correction needs at least one entity", field="entities")
    if end <= start:
        raise ValidationError(f"the range ends ({end}) before it starts ({start})", field="end")
    views = MaterializedViews.resolve(definitions, topic)
    span = reach(views)
    ends = _log_ends(settings, topic)
    _await_processors(settings, definitions.project, views, ends, wait_s)
    prevs = bool(views.plan.source.prevs)
    lo = start - span
    read = _read_events(
        settings, views, ends, set(entities), lo - (history_limit if prevs else timedelta(0)),
        end + span, at=lo,
    )  # fmt: skip
    before = read["_event_us"] < _us(lo)
    events = _finish(read[~before], views.plan.source)
    report = Correction(start, end + span, events=len(events))
    if events.empty:
        return report
    if prevs:  # each entity's events before the reach, for prev() only
        history, report.unseeded = _history(
            settings, views, ends, set(entities), lo, history_limit, read[before]
        )
        report.history = len(history)
        events = pd.concat([history, events], ignore_index=True)
    now = datetime.now(UTC)
    frames = compute_frame(definitions, events, views=views.views, created=now, complete=True)
    entity = views.plan.source.entity_field
    partition_of = dict(zip(events[entity], events["_partition"], strict=True))
    try:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn, conn.transaction():
            for view in views.views:
                rows = frames[view.name]
                times = rows["event_timestamp"]
                rows = rows[(times >= report.start) & (times < report.end)].copy()
                # Lineage: the topic and partition; no offset range (the row was recomputed
                # from events out of log order).
                rows["source_topic"] = topic
                rows["source_partition"] = rows[views.join_key].map(partition_of).astype("int32")
                report.deleted[view.name] = _delete(conn, definitions, view.name, report, entities)
                report.written[view.name] = write_feature_rows(conn, definitions, view.name, rows)
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"PostgreSQL failed during the correction: {exc}") from exc
    return report


def _delete(
    conn: psycopg.Connection[tuple[object, ...]],
    definitions: Definitions,
    name: str,
    report: Correction,
    entities: Collection[str],
) -> int:
    view = definitions.view(name)
    key = definitions.join_key(view)
    ts = view.source.timestamp_field
    cur = conn.execute(
        sql.SQL("DELETE FROM {} WHERE {} = ANY(%s) AND {} >= %s AND {} < %s").format(
            table_identifier(view.source.table),
            sql.Identifier(key),
            sql.Identifier(ts),
            sql.Identifier(ts),
        ),
        (list(entities), report.start, report.end),
    )
    with conn.cursor() as log:
        record_change(log, view.source.table, report.start, report.end)
    return cur.rowcount


def _consumer(settings: Settings) -> Consumer:
    return create_client(
        Consumer,
        settings.kafka.connection.consumer(
            f"featurestore-correction-{time.time_ns()}",
            **{"enable.auto.commit": False, "enable.partition.eof": True},
        ),
    )


def _log_ends(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition's end offset now: the log the correction reads and waits for."""
    try:
        return end_offsets(settings.kafka.connection, topic)
    except NotFoundError as exc:  # the topic it was told to correct: the caller's setting
        raise ConfigurationError(str(exc)) from None


def _await_processors(
    settings: Settings,
    project: str,
    views: MaterializedViews,
    ends: dict[int, int],
    wait_s: float,
) -> None:
    """Wait until, for every view and non-empty partition, a processor applied up to the end."""
    deadline = time.monotonic() + wait_s
    names = [v.name for v in views.views]
    while True:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT view, partition, max(next_offset) FROM {STATE_TABLE} "
                "WHERE project = %s AND topic = %s AND view = ANY(%s) GROUP BY view, partition",
                (project, views.topic, names),
            ).fetchall()
        applied = {(str(v), int(str(p))): int(str(o)) for v, p, o in rows}
        if not applied:
            raise ConfigurationError(
                f"no processor has applied topic {views.topic!r} for project {project!r}: start"
                " one (featurestore processors start) before correcting its rows"
            )
        behind = [
            f"{name}[{p}] at {applied.get((name, p), 0)} of {end}"
            for name in names
            for p, end in ends.items()
            if end > 0 and applied.get((name, p), 0) < end
        ]
        if not behind:
            return
        if time.monotonic() > deadline:
            raise BackendUnavailableError(
                f"the processors of {views.topic!r} have not applied the log's end within"
                f" {wait_s:.0f} s ({', '.join(behind[:4])}): correct once they have"
            )
        time.sleep(0.5)


def _read_events(
    settings: Settings,
    views: MaterializedViews,
    ends: dict[int, int],
    entities: set[str],
    lo: datetime,
    hi: datetime,
    *,
    at: datetime,
) -> pd.DataFrame:
    """The entities' events in ``[lo, hi)`` among the records before ``ends``, by event time.

    Each partition is read from the first record whose Kafka time is at or after ``at`` (an
    event's Kafka time is never before its event time, so no event at or after ``at`` is
    earlier); records appended later with older event times are at higher offsets and are read
    too. Events before ``at`` are those of the records read (``lo`` may be earlier: a replay
    of past events logs them with later Kafka times).
    """
    lo_us, hi_us = _us(lo), _us(hi)
    consumer = _consumer(settings)
    try:
        starts = _offsets_at(consumer, views.topic, ends, _us(at))
        parts = _read_slice(consumer, settings, views, starts, ends)
    finally:
        consumer.close()
    return _select(parts, views.plan.source, entities, lo_us, hi_us)


def _history(
    settings: Settings,
    views: MaterializedViews,
    ends: dict[int, int],
    entities: set[str],
    lo: datetime,
    limit: timedelta,
    earlier: pd.DataFrame,
) -> tuple[pd.DataFrame, list[str]]:
    """The entities' events before ``lo`` that their ``prev()`` reads need, by event time.

    ``earlier``: those among the records read for the range. The log before those records is
    read back in slices of Kafka time, each twice as long as the one before, until the events
    since the slice's start give every entity a value for every read of the source (or the
    log's start, or ``limit`` back); those events are returned (all those read, at the limit),
    with the entities still without a value (their first event of the range reads null, as the
    stream's first event does).
    """
    source = views.plan.source
    lo_us = _us(lo)
    span = max(reach(views), timedelta(minutes=1))
    consumer = _consumer(settings)
    try:
        firsts = _first_offsets(consumer, views.topic, ends)
        stops = _offsets_at(consumer, views.topic, ends, lo_us)
        while True:
            starts = _offsets_at(consumer, views.topic, ends, _us(lo - span))
            parts = _read_slice(consumer, settings, views, starts, stops)
            earlier = _select([earlier, *parts], source, entities, None, lo_us)
            # Every event since lo - span is read now (its Kafka time is not earlier): a value
            # found among them is the latest. One found only before may not be (an event
            # appended late, among the range's records, while the one just before lo is not
            # read yet).
            recent = _finish(earlier[earlier["_event_us"] >= _us(lo - span)], source)
            missing = _unseeded(views, recent, entities)
            if not missing:
                return recent, missing
            if all(starts[p] <= firsts[p] for p in starts) or span >= limit:
                everything = _finish(earlier, source)
                return everything, _unseeded(views, everything, entities)
            stops, span = starts, min(2 * span, limit)
    finally:
        consumer.close()


def _unseeded(views: MaterializedViews, events: pd.DataFrame, entities: set[str]) -> list[str]:
    """The entities that some ``prev()`` read of the source finds no value for in ``events``."""
    if events.empty:
        return sorted(entities)
    source = views.plan.source
    state = PartitionFeatureState()
    process_chain(ViewChain((views.plan,)), [state], frame_batch(events, source))
    keys = {read.key for read in source.prevs}
    return sorted(
        e for e in entities if e not in state.entities or not keys <= state.entities[e].prev.keys()
    )


def _first_offsets(consumer: Consumer, topic: str, ends: dict[int, int]) -> dict[int, int]:
    """Each partition's first offset still in the log."""
    return {
        p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0])
        for p in ends
    }


def _offsets_at(consumer: Consumer, topic: str, ends: dict[int, int], at_us: int) -> dict[int, int]:
    """Per partition, the first offset whose Kafka time is at or after ``at_us`` (else its end)."""
    wanted = [TopicPartition(topic, p, max(at_us // 1000, 0)) for p, e in ends.items() if e > 0]
    try:
        found = consumer.offsets_for_times(wanted, timeout=10) if wanted else []
    except Exception as exc:
        raise BackendUnavailableError(f"reading topic {topic!r}: {exc}") from exc
    out = dict(ends)
    for tp in found:
        if 0 <= tp.offset < ends[tp.partition]:
            out[tp.partition] = int(tp.offset)
    return out


def _read_slice(
    consumer: Consumer,
    settings: Settings,
    views: MaterializedViews,
    starts: dict[int, int],
    stops: dict[int, int],
) -> list[pd.DataFrame]:
    """The records of each partition in ``[starts[p], stops[p])``, decoded."""
    source = views.plan.source
    decoder = decoder_for(settings.schema_registry, source)
    parts: list[pd.DataFrame] = []
    try:
        for partition, first in starts.items():
            end = stops[partition]
            if first >= end:
                continue
            consumer.assign([TopicPartition(views.topic, partition, first)])
            done = False
            while not done:
                got = []
                for m in consumer.consume(_CHUNK, 5.0):
                    error = m.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            raise BackendUnavailableError(f"reading {views.topic!r}: {error}")
                        done = True  # the partition's end: offsets may skip (markers)
                        continue
                    offset = int(m.offset() or 0)
                    if offset >= end:
                        done = True
                        continue
                    got.append(m)
                if not got:
                    continue
                done = done or int(got[-1].offset() or 0) + 1 >= end
                records = KafkaRecords.of(
                    [m.key() for m in got], [m.value() for m in got],
                    [int(m.partition() or 0) for m in got], [int(m.offset() or 0) for m in got],
                    [m.timestamp()[1] for m in got],
                )  # fmt: skip
                parts.append(_frame(decode_records(records, decoder, source).events, source))
    except BackendUnavailableError:
        raise
    except Exception as exc:
        raise BackendUnavailableError(f"reading topic {views.topic!r}: {exc}") from exc
    return parts


def _select(
    parts: list[pd.DataFrame], source: SourcePlan, entities: set[str], lo_us: int | None,
    hi_us: int,
) -> pd.DataFrame:  # fmt: skip
    """The entities' decoded events of ``parts`` in ``[lo_us, hi_us)``, by event time."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["_event_us", "_partition", "_offset", source.entity_field])
    events = pd.concat(parts, ignore_index=True)
    times = events["_event_us"]
    keep = events[source.entity_field].isin(entities) & (times < hi_us)
    if lo_us is not None:
        keep &= times >= lo_us
    events = events[keep]
    return events.sort_values(["_event_us", "_partition", "_offset"], kind="stable")


def _finish(events: pd.DataFrame, source: SourcePlan) -> pd.DataFrame:
    """Selected events as :func:`compute_frame` reads them (the source's time field named)."""
    events = events.rename(columns={"_event_us": source.timestamp_field})
    return events.drop(columns=["_offset"]).reset_index(drop=True)


def _frame(batch: EventBatch, source: SourcePlan) -> pd.DataFrame:
    """Decoded events as a frame of the source's fields (what :func:`compute_frame` reads)."""
    names = np.asarray(batch.names, dtype=object)
    out: dict[str, object] = {
        source.entity_field: names[batch.code] if len(batch.code) else np.empty(0, object),
        "_event_us": batch.event_us,
        "_partition": batch.partition,
        "_offset": batch.offset,
        **batch.fields,
    }
    if source.id_field and batch.event_id is not None:
        out[source.id_field] = list(batch.event_id)
    return pd.DataFrame(out)


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
