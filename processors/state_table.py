"""The processors' state in PostgreSQL, one row per (processor, project, topic, Kafka partition).

A row holds the first offset not applied yet, the partition's symbols' states, and the latest
online rows of the last step. It is written in the same transaction as the feature rows that
step produced: the rows and the state that led to them commit together or not at all, which is
what makes the effect exactly-once (``processors/README.md``).

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

The trade ids of open minutes (for deduplication) are most of a state's size, so they are kept
apart, as a journal in ``processor_trade_ids``: each save adds the ids seen since the last one
(one row per symbol and minute touched) and deletes the rows of minutes that have closed, in
the same transaction. A save writes a few KB instead of the whole set (~0.5 MB per partition at
5,000 events/s)::

    processor, project, topic, partition   -- the state row's key
    symbol       text
    minute_us    bigint    -- the open minute's start (µs since the epoch)
    ids          text[]
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg

from processors.core import IdChunk

__all__ = [
    "IDS_TABLE",
    "STATE_TABLE",
    "StateKey",
    "StoredState",
    "delete_state",
    "ensure_state_table",
    "stored_offsets",
]

STATE_TABLE = "processor_state"
IDS_TABLE = "processor_trade_ids"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    processor text NOT NULL,
    project text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    state bytea,
    online bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (processor, project, topic, partition)
);
CREATE TABLE IF NOT EXISTS {IDS_TABLE} (
    processor text NOT NULL,
    project text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    symbol text NOT NULL,
    minute_us bigint NOT NULL,
    ids text[] NOT NULL
);
CREATE INDEX IF NOT EXISTS {IDS_TABLE}_key
    ON {IDS_TABLE} (processor, project, topic, partition, symbol, minute_us)
"""

Conn = psycopg.Connection[tuple[object, ...]]
Cursor = psycopg.Cursor[tuple[object, ...]]


@dataclass(frozen=True)
class StateKey:
    """Which row: a processor's view of one partition of its topic."""

    processor: str
    project: str
    topic: str
    partition: int

    def params(self) -> tuple[str, str, str, int]:
        """The key columns' values, in the table's order."""
        return (self.processor, self.project, self.topic, self.partition)

    def lock(self, cur: Cursor) -> int:
        """Lock the row for this transaction (creating it); returns its next offset."""
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (processor, project, topic, partition, next_offset) "
            "VALUES (%s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
            self.params(),
        )
        cur.execute(
            f"SELECT next_offset FROM {STATE_TABLE} WHERE processor = %s AND project = %s "
            "AND topic = %s AND partition = %s FOR UPDATE",
            self.params(),
        )
        row = cur.fetchone()
        assert row is not None and isinstance(row[0], int)
        return row[0]

    def load(self, cur: Cursor) -> StoredState:
        """The stored state, its trade id chunks and online rows (the row must be locked)."""
        cur.execute(
            f"SELECT state, online FROM {STATE_TABLE} WHERE processor = %s AND project = %s "
            "AND topic = %s AND partition = %s",
            self.params(),
        )
        row = cur.fetchone()
        if row is None:
            return StoredState(None, [], None)
        cur.execute(
            f"SELECT symbol, minute_us, ids FROM {IDS_TABLE} WHERE processor = %s "
            "AND project = %s AND topic = %s AND partition = %s",
            self.params(),
        )
        chunks = [
            IdChunk(str(symbol), int(str(minute)), [str(i) for i in ids])  # type: ignore[attr-defined]
            for symbol, minute, ids in cur.fetchall()
        ]
        state, online = row
        return StoredState(_bytes(state), chunks, _bytes(online))

    def save(
        self,
        cur: Cursor,
        next_offset: int,
        state: bytes,
        online: bytes,
        new_ids: Sequence[IdChunk] = (),
        horizons: Mapping[str, int] | None = None,
    ) -> None:
        """Store the state after a step (the row must be locked).

        Args:
            cur: a cursor of the transaction that holds the row's lock.
            next_offset: the first offset not applied.
            state: :meth:`processors.step.PartitionState.to_bytes`.
            online: the step's latest online rows (rewritten to Redis on load).
            new_ids: id chunks to add to the journal.
            horizons: per symbol, its oldest open minute: its chunks of earlier minutes are
                deleted.
        """
        cur.execute(
            f"UPDATE {STATE_TABLE} SET next_offset = %s, state = %s, online = %s, "
            "updated_at = now() WHERE processor = %s AND project = %s AND topic = %s "
            "AND partition = %s",
            (next_offset, state, online, *self.params()),
        )
        if horizons:
            cur.execute(
                f"DELETE FROM {IDS_TABLE} AS t USING unnest(%s::text[], %s::bigint[]) "
                "AS h(symbol, horizon) WHERE t.processor = %s AND t.project = %s "
                "AND t.topic = %s AND t.partition = %s AND t.symbol = h.symbol "
                "AND t.minute_us < h.horizon",
                (list(horizons), list(horizons.values()), *self.params()),
            )
        if new_ids:
            with cur.copy(
                f"COPY {IDS_TABLE} (processor, project, topic, partition, symbol, minute_us, "
                "ids) FROM STDIN"
            ) as copy:
                for chunk in new_ids:
                    copy.write_row((*self.params(), chunk.symbol, chunk.minute_us, chunk.ids))


@dataclass(frozen=True)
class StoredState:
    """What :meth:`StateKey.load` read."""

    state: bytes | None
    ids: list[IdChunk]
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


def stored_offsets(conn: Conn, processor: str, project: str, topic: str) -> dict[int, int]:
    """``{partition: next_offset}`` of a processor's stored state."""
    rows = conn.execute(
        f"SELECT partition, next_offset FROM {STATE_TABLE} "
        "WHERE processor = %s AND project = %s AND topic = %s",
        (processor, project, topic),
    ).fetchall()
    return {int(str(p)): int(str(o)) for p, o in rows}


def delete_state(conn: Conn, processor: str, project: str, topic: str) -> int:
    """Forget a processor's state (its next run starts over); returns the rows deleted."""
    params = (processor, project, topic)
    with conn.transaction():
        conn.execute(
            f"DELETE FROM {IDS_TABLE} WHERE processor = %s AND project = %s AND topic = %s",
            params,
        )
        cur = conn.execute(
            f"DELETE FROM {STATE_TABLE} WHERE processor = %s AND project = %s AND topic = %s",
            params,
        )
    return cur.rowcount
