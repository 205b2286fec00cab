"""The processors' state in PostgreSQL, one row per (processor, project, topic, Kafka partition).

A row holds the first offset not applied yet, the feature engine's state of the partition, and
the latest online rows of the last step. It is written in the same transaction as the feature
rows that step produced: the rows and the state that led to them commit together or not at
all, which is what makes the effect exactly-once (``processors/README.md``).

::

    processor    text      -- the processor's name (--name)
    project      text      -- the Feast project its tables belong to
    topic        text
    partition    integer
    next_offset  bigint    -- records before it are applied
    state        bytea     -- PartitionState.to_bytes()
    online       bytea     -- Arrow IPC: the last step's latest rows (rewritten to Redis on load)
    updated_at   timestamptz
    PRIMARY KEY (processor, project, topic, partition)

The events of open tiles (their ids deduplicate; running views recompute rows from their
values) are most of a state's size, so they are kept apart, as a journal in
``processor_view_events``: each save adds the events accepted since the last one (one row per
entity and tile touched) and deletes the rows of tiles that have closed, in the same
transaction. A save writes a few KB instead of the whole set (~80,000 events per partition at
5,000 events/s). A tile some percentile reads keeps its rows until the tile is dropped: its
values are read back from them (``processors/features/state.py``)::

    processor, project, topic, partition   -- the state row's key
    entity       text
    tile_us      bigint    -- the open tile's start (µs since the epoch)
    ids          text[]
    data         bytea     -- the events' times, offsets, Kafka times and values
    seq          bigserial -- journal order
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from featurestore.errors import FeatureStoreError
from processors.features import EventChunk

__all__ = [
    "IDS_TABLE",
    "OWNER_TABLE",
    "STATE_TABLE",
    "PartitionFencedError",
    "StateKey",
    "StoredState",
    "check_owner",
    "claim_partitions",
    "delete_state",
    "ensure_state_table",
    "stored_offsets",
    "text_array",
    "view_offsets",
]

STATE_TABLE = "processor_view_state"
IDS_TABLE = "processor_view_events"
OWNER_TABLE = "processor_partition_owner"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    processor text NOT NULL,
    project text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    view text NOT NULL,
    next_offset bigint NOT NULL,
    state bytea,
    online bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (processor, project, topic, partition, view)
);
CREATE TABLE IF NOT EXISTS {IDS_TABLE} (
    processor text NOT NULL,
    project text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    view text NOT NULL,
    entity text NOT NULL,
    tile_us bigint NOT NULL,
    ids text[] NOT NULL,
    data bytea NOT NULL,
    seq bigserial
);
CREATE INDEX IF NOT EXISTS {IDS_TABLE}_key
    ON {IDS_TABLE} (processor, project, topic, partition, view, entity, tile_us);
CREATE TABLE IF NOT EXISTS {OWNER_TABLE} (
    processor text NOT NULL,
    project text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    epoch bigint NOT NULL,
    owner text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (processor, project, topic, partition)
)
"""

Conn = psycopg.Connection[tuple[object, ...]]
Cursor = psycopg.Cursor[tuple[object, ...]]


class PartitionFencedError(FeatureStoreError):
    """Another application of the processor claimed the partition: this one must stop.

    Not transient: retrying cannot help, the partition is someone else's now.
    """


def claim_partitions(
    conn: Conn, processor: str, project: str, topic: str, partitions: Sequence[int], owner: str
) -> dict[int, int]:
    """Take ``partitions`` of a processor's topic over; returns each one's new epoch.

    Each claim raises the partition's epoch by one. A step commits only while its
    application's epoch is the partition's (:func:`check_owner`, in the step's transaction),
    so an application that lost a partition (paused, partitioned away, a zombie) cannot
    commit for it any more, and the claim waits for a step in flight to end first.
    """
    epochs: dict[int, int] = {}
    with conn.transaction():
        for partition in sorted(partitions):
            row = conn.execute(
                f"INSERT INTO {OWNER_TABLE} AS t (processor, project, topic, partition, epoch, "
                "owner) VALUES (%s, %s, %s, %s, 1, %s) ON CONFLICT (processor, project, topic, "
                "partition) DO UPDATE SET epoch = t.epoch + 1, owner = EXCLUDED.owner, "
                "claimed_at = now() RETURNING epoch",
                (processor, project, topic, partition, owner),
            ).fetchone()
            assert row is not None and isinstance(row[0], int)
            epochs[partition] = row[0]
    return epochs


def check_owner(
    cur: Cursor, processor: str, project: str, topic: str, partition: int, epoch: int | None
) -> None:
    """Hold the partition's ownership for this transaction, or refuse to go on.

    Raises:
        PartitionFencedError: the partition's epoch is not ``epoch`` (it was claimed since).
    """
    cur.execute(
        f"SELECT epoch, owner FROM {OWNER_TABLE} WHERE processor = %s AND project = %s "
        "AND topic = %s AND partition = %s FOR SHARE",
        (processor, project, topic, partition),
    )
    row = cur.fetchone()
    if row is None or epoch is None or row[0] != epoch:
        held = "no one" if row is None else f"{row[1]} (epoch {row[0]})"
        raise PartitionFencedError(
            f"partition {partition} of topic {topic!r} of processor {processor!r} is held by "
            f"{held}, not by this application (epoch {epoch}): it was claimed by another; "
            "this one stops without committing"
        )


@dataclass(frozen=True)
class StateKey:
    """Which row: one feature view's state in a processor, for one partition of its topic.

    Each view has its own state and next offset, so a view added later starts from the
    beginning of the log (a backfill through the stream) while the others go on.
    """

    processor: str
    project: str
    topic: str
    partition: int
    view: str

    def params(self) -> tuple[str, str, str, int, str]:
        """The key columns' values, in the table's order."""
        return (self.processor, self.project, self.topic, self.partition, self.view)

    def lock(self, cur: Cursor) -> int:
        """Lock the row for this transaction (creating it); returns its next offset."""
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (processor, project, topic, partition, view, "
            "next_offset) VALUES (%s, %s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
            self.params(),
        )
        cur.execute(
            f"SELECT next_offset FROM {STATE_TABLE} WHERE processor = %s AND project = %s "
            "AND topic = %s AND partition = %s AND view = %s FOR UPDATE",
            self.params(),
        )
        row = cur.fetchone()
        assert row is not None and isinstance(row[0], int)
        return row[0]

    def load(self, cur: Cursor) -> StoredState:
        """The stored state, its journaled open-tile events and online rows (row locked)."""
        cur.execute(
            f"SELECT state, online FROM {STATE_TABLE} WHERE processor = %s AND project = %s "
            "AND topic = %s AND partition = %s AND view = %s",
            self.params(),
        )
        row = cur.fetchone()
        if row is None:
            return StoredState(None, [], None)
        cur.execute(
            f"SELECT entity, tile_us, ids, data FROM {IDS_TABLE} WHERE processor = %s "
            "AND project = %s AND topic = %s AND partition = %s AND view = %s ORDER BY seq",
            self.params(),
        )
        chunks = [
            EventChunk(str(entity), int(str(tile)), [str(i) for i in ids], _bytes(data) or b"")  # type: ignore[attr-defined]
            for entity, tile, ids, data in cur.fetchall()
        ]
        state, online = row
        return StoredState(_bytes(state), chunks, _bytes(online))

    def save(
        self,
        cur: Cursor,
        next_offset: int,
        state: bytes,
        online: bytes,
        new_events: Sequence[EventChunk] = (),
        horizons: Mapping[str, int] | None = None,
    ) -> None:
        """Store the state after a step (the row must be locked).

        Args:
            cur: a cursor of the transaction that holds the row's lock.
            next_offset: the first offset not applied.
            state: :meth:`processors.step.PartitionState.to_bytes`.
            online: the step's latest online rows (rewritten to Redis on load).
            new_events: event chunks to add to the journal.
            horizons: per entity, its oldest tile whose chunks are still read (an open one,
                or one whose percentiles' values they hold): its chunks of earlier tiles are
                deleted.
        """
        cur.execute(
            f"UPDATE {STATE_TABLE} SET next_offset = %s, state = %s, online = %s, "
            "updated_at = now() WHERE processor = %s AND project = %s AND topic = %s "
            "AND partition = %s AND view = %s",
            (next_offset, state, online, *self.params()),
        )
        if horizons:
            cur.execute(
                f"DELETE FROM {IDS_TABLE} AS t USING unnest(%s::text[], %s::bigint[]) "
                "AS h(entity, horizon) WHERE t.processor = %s AND t.project = %s "
                "AND t.topic = %s AND t.partition = %s AND t.view = %s AND t.entity = h.entity "
                "AND t.tile_us < h.horizon",
                (list(horizons), list(horizons.values()), *self.params()),
            )
        if new_events:
            with cur.copy(
                f"COPY {IDS_TABLE} (processor, project, topic, partition, view, entity, "
                "tile_us, ids, data) FROM STDIN"
            ) as copy:
                params = self.params()
                for chunk in new_events:
                    copy.write_row(
                        (*params, chunk.entity, chunk.tile_us, text_array(chunk.ids), chunk.data)
                    )


def text_array(items: Sequence[str]) -> str:
    """``items`` as PostgreSQL's literal of a ``text[]`` (for COPY, which parses it).

    Two C-level joins instead of psycopg's per-element list dumper, which was most of the
    commit thread's time under the GIL (every event's id is journaled once per view).
    """
    if not items:
        return "{}"
    raw = "".join(items)
    if "\\" in raw or '"' in raw:
        items = [item.replace("\\", "\\\\").replace('"', '\\"') for item in items]
    return '{"' + '","'.join(items) + '"}'


@dataclass(frozen=True)
class StoredState:
    """What :meth:`StateKey.load` read."""

    state: bytes | None
    chunks: list[EventChunk]
    online: bytes | None


def _bytes(value: object) -> bytes | None:
    if value is None:
        return None
    assert isinstance(value, bytes | bytearray | memoryview)
    return bytes(value)


def ensure_state_table(conn: Conn) -> None:
    """Create the state table when it does not exist.

    The state column is compressed with lz4 where the server has it (pglz, the default, costs
    several times more CPU per stored state).
    """
    conn.execute(_DDL)
    row = conn.execute(
        "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attname = 'state'",
        (STATE_TABLE,),
    ).fetchone()
    if row is not None and row[0] != "l":
        with contextlib.suppress(psycopg.errors.FeatureNotSupported):
            conn.execute(f"ALTER TABLE {STATE_TABLE} ALTER COLUMN state SET COMPRESSION lz4")


def view_offsets(conn: Conn, processor: str, project: str, topic: str) -> dict[str, dict[int, int]]:
    """``{view: {partition: next_offset}}`` of a processor's stored states."""
    rows = conn.execute(
        f"SELECT view, partition, next_offset FROM {STATE_TABLE} "
        "WHERE processor = %s AND project = %s AND topic = %s",
        (processor, project, topic),
    ).fetchall()
    out: dict[str, dict[int, int]] = {}
    for view, partition, offset in rows:
        out.setdefault(str(view), {})[int(str(partition))] = int(str(offset))
    return out


def stored_offsets(
    conn: Conn, processor: str, project: str, topic: str, views: Sequence[str]
) -> dict[int, int]:
    """``{partition: next_offset}`` where a run of ``views`` starts: the smallest of theirs.

    A partition where one of the views has no state yet is left out: it starts where the run's
    default says (the beginning of the log, so that a new view is backfilled).
    """
    stored = view_offsets(conn, processor, project, topic)
    partitions = set.intersection(*(set(stored.get(v, {})) for v in views)) if views else set()
    return {p: min(stored[v][p] for v in views) for p in sorted(partitions)}


def delete_state(
    conn: Conn, processor: str, project: str, topic: str, view: str | None = None
) -> int:
    """Forget a processor's state, or one view's (it starts over); returns the rows deleted."""
    where = "processor = %s AND project = %s AND topic = %s"
    params: tuple[str, ...] = (processor, project, topic)
    if view is not None:
        where += " AND view = %s"
        params += (view,)
    with conn.transaction():
        conn.execute(f"DELETE FROM {IDS_TABLE} WHERE {where}", params)
        cur = conn.execute(f"DELETE FROM {STATE_TABLE} WHERE {where}", params)
    return cur.rowcount
