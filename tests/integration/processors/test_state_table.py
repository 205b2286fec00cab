"""The state table in PostgreSQL: the state row, and the journal of open tiles' events."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from featurestore.config import Settings
from processors.features import EventChunk
from processors.state_table import IDS_TABLE
from processors.state_table import StateKey
from processors.state_table import delete_state
from processors.state_table import ensure_state_table
from processors.state_table import stored_offsets

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
            # Ids are free text: what the array literal and COPY must both escape.
            EventChunk("CCC", 0, ['q"uote', "back\\slash", "{,}", "NULL", "t\tn\n", "é"], b""),
        ]
        with conn.transaction(), conn.cursor() as cur:
            assert key.lock(cur) == 0
            key.save(cur, 10, b"s1", b"o1", first, {"AAA": 0, "BBB": 0, "CCC": 0})
        assert _journal(conn, key) == sorted(first)
        # AAA's minute 0 closed (its oldest open minute is now 1); BBB's is still open.
        second = [EventChunk("AAA", MINUTE, ["a3"], b"a"), EventChunk("BBB", 0, ["b2"], b"")]
        with conn.transaction(), conn.cursor() as cur:
            assert key.lock(cur) == 10
            key.save(cur, 20, b"s2", b"o2", second, {"AAA": MINUTE, "BBB": 0})
        assert _journal(conn, key) == sorted([first[1], first[2], *second])
        with conn.transaction(), conn.cursor() as cur:
            key.lock(cur)
            stored = key.load(cur)
        assert (stored.state, stored.online) == (b"s2", b"o2")
        # A failed transaction adds nothing and deletes nothing.
        with pytest.raises(RuntimeError), conn.transaction(), conn.cursor() as cur:
            key.lock(cur)
            key.save(cur, 30, b"s3", b"o3", [EventChunk("CCC", 0, ["c"], b"c")], {"BBB": 2**62})
            raise RuntimeError("the batch failed before its commit")
        assert _journal(conn, key) == sorted([first[1], first[2], *second])
        assert stored_offsets(conn, key.processor, key.project, key.topic, ["bars_1m"]) == {2: 20}
        assert stored_offsets(conn, key.processor, key.project, key.topic, ["bars_1m", "x"]) == {}
        assert delete_state(conn, key.processor, key.project, key.topic) == 1
        left = conn.execute(
            f"SELECT count(*) FROM {IDS_TABLE} WHERE processor = %s", (key.processor,)
        ).fetchone()
        assert left == (0,)


def test_a_claim_fences_off_the_previous_owner_of_a_partition(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    from processors.state_table import PartitionFencedError
    from processors.state_table import check_owner
    from processors.state_table import claim_partitions

    processor, project = unique_name("proc"), unique_name("project")
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        ensure_state_table(conn)
        first = claim_partitions(conn, processor, project, "trades", [0, 1], "app-a")
        with conn.transaction(), conn.cursor() as cur:
            check_owner(cur, processor, project, "trades", 1, first[1])  # holds: no error
        second = claim_partitions(conn, processor, project, "trades", [1], "app-b")
        assert second == {1: first[1] + 1}
        with pytest.raises(PartitionFencedError, match="app-b"), conn.cursor() as cur:
            check_owner(cur, processor, project, "trades", 1, first[1])
        with conn.cursor() as cur:
            check_owner(cur, processor, project, "trades", 0, first[0])  # not claimed again
            check_owner(cur, processor, project, "trades", 1, second[1])
            with pytest.raises(PartitionFencedError, match="no one"):
                check_owner(cur, processor, project, "trades", 2, 1)  # never claimed
