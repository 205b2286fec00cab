"""The state table in PostgreSQL: the state row, and the journal of open tiles' events."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from featurestore.config import Settings
from processors.features import EventChunk
from processors.state_table import (
    IDS_TABLE,
    StateKey,
    delete_state,
    ensure_state_table,
    stored_offsets,
)

pytestmark = pytest.mark.integration

MINUTE = 60_000_000


def _journal(conn: psycopg.Connection[tuple[object, ...]], key: StateKey) -> list[EventChunk]:
    with conn.transaction(), conn.cursor() as cur:
        key.lock(cur)
        return sorted(key.load(cur).chunks)


def test_saves_add_event_chunks_and_drop_those_of_closed_tiles(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    key = StateKey(unique_name("proc"), unique_name("project"), "trades", 2, "bars_1m")
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        ensure_state_table(conn)
        first = [
            EventChunk("AAA", 0, ["a1", "a\x1f2", ""], b"\x00data"),
            EventChunk("BBB", 0, ["b1"], b"b"),
        ]
        with conn.transaction(), conn.cursor() as cur:
            assert key.lock(cur) == 0
            key.save(cur, 10, b"s1", b"o1", first, {"AAA": 0, "BBB": 0})
        assert _journal(conn, key) == sorted(first)
        # AAA's minute 0 closed (its oldest open minute is now 1); BBB's is still open.
        second = [EventChunk("AAA", MINUTE, ["a3"], b"a"), EventChunk("BBB", 0, ["b2"], b"")]
        with conn.transaction(), conn.cursor() as cur:
            assert key.lock(cur) == 10
            key.save(cur, 20, b"s2", b"o2", second, {"AAA": MINUTE, "BBB": 0})
        assert _journal(conn, key) == sorted([first[1], *second])
        with conn.transaction(), conn.cursor() as cur:
            key.lock(cur)
            stored = key.load(cur)
        assert (stored.state, stored.online) == (b"s2", b"o2")
        # A failed transaction adds nothing and deletes nothing.
        with pytest.raises(RuntimeError), conn.transaction(), conn.cursor() as cur:
            key.lock(cur)
            key.save(cur, 30, b"s3", b"o3", [EventChunk("CCC", 0, ["c"], b"c")], {"BBB": 2**62})
            raise RuntimeError("the batch failed before its commit")
        assert _journal(conn, key) == sorted([first[1], *second])
        assert stored_offsets(conn, key.processor, key.project, key.topic, ["bars_1m"]) == {2: 20}
        assert stored_offsets(conn, key.processor, key.project, key.topic, ["bars_1m", "x"]) == {}
        assert delete_state(conn, key.processor, key.project, key.topic) == 1
        left = conn.execute(
            f"SELECT count(*) FROM {IDS_TABLE} WHERE processor = %s", (key.processor,)
        ).fetchone()
        assert left == (0,)
