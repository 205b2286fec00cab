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
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg

__all__ = ["STATE_TABLE", "StateKey", "delete_state", "ensure_state_table", "stored_offsets"]

STATE_TABLE = "processor_state"

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
)
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

    def load(self, cur: Cursor) -> tuple[bytes | None, bytes | None]:
        """The stored state and online rows (the row must be locked)."""
        cur.execute(
            f"SELECT state, online FROM {STATE_TABLE} WHERE processor = %s AND project = %s "
            "AND topic = %s AND partition = %s",
            self.params(),
        )
        row = cur.fetchone()
        if row is None:
            return None, None
        state, online = row
        return _bytes(state), _bytes(online)

    def save(self, cur: Cursor, next_offset: int, state: bytes, online: bytes) -> None:
        """Store the state after a step (the row must be locked)."""
        cur.execute(
            f"UPDATE {STATE_TABLE} SET next_offset = %s, state = %s, online = %s, "
            "updated_at = now() WHERE processor = %s AND project = %s AND topic = %s "
            "AND partition = %s",
            (next_offset, state, online, *self.params()),
        )


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
    cur = conn.execute(
        f"DELETE FROM {STATE_TABLE} WHERE processor = %s AND project = %s AND topic = %s",
        (processor, project, topic),
    )
    return cur.rowcount
