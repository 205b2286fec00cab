"""What the engine remembers per Kafka partition between steps, and its stored forms.

Per entity: a :class:`TileStats` per tile still read by some window, the previous values that
``prev()`` reads, and, for tiles still open (events may still arrive for them), their events:
the ids that deduplicate and, for running views, the values that rows as of each event are
recomputed from when an out-of-order event lands before them.

The events of open tiles are most of a state's size (~80,000 per partition at 5,000 events/s),
so they are not in the state's JSON: each save journals the events accepted since the last one
as :class:`EventChunk` rows and drops the chunks of tiles that closed
(``processors/state_table.py``).

A percentile keeps every value of its column in each tile its windows read, closed tiles too:
in the JSON, every save would rewrite a window's worth of values (a 15-minute p90 of SPY's
trades: 44 KB a save instead of 3.4 KB, ``processors/README.md``). So a tile whose events were
all journaled (:attr:`TileStats.journaled`) keeps its chunks until the tile itself is dropped,
its stored form leaves the values out, and loading takes them back from its chunks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from processors.features.stats import ColumnStats
from processors.features.stats import Summary

__all__ = [
    "NO_OPEN_TILE",
    "EntityState",
    "EventChunk",
    "OpenTile",
    "PartitionFeatureState",
    "StateCounts",
    "TileStats",
]

_FORMAT = 3
NO_OPEN_TILE = 2**62
"""The horizon of an entity without a tile whose chunks are read: every stored chunk is older."""

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class EventChunk(NamedTuple):
    """Events of one entity's open tile, journaled apart from the state they belong to."""

    entity: str
    tile_us: int
    ids: list[str]
    data: bytes
    """:meth:`OpenTile.pack` of the same events."""

    def values(self) -> dict[str, F64]:
        """The events' value of each column, in log order."""
        return OpenTile.unpack(self.data, self.ids).values


@dataclass(frozen=True)
class StateCounts:
    """What a state holds, counted: the two things its memory grows with.

    Both are bounded once the event time has run past the longest reach of the views: tiles
    by the number of entities times the tiles a window still reads (``TopicPlan.horizon_us``,
    two hours for a one-hour view sliding by the hour), open events by the events of the
    last tile and the lateness.
    """

    tiles: int = 0
    """Tiles' statistics (:class:`TileStats`), one per entity and tile some window reads."""
    open_events: int = 0
    """Events of open tiles (:class:`OpenTile`), kept for deduplication and running rows."""

    def __add__(self, other: StateCounts) -> StateCounts:
        """Both counts summed."""
        return StateCounts(self.tiles + other.tiles, self.open_events + other.open_events)


@dataclass
class TileStats:
    """One tile of one entity: per column statistics, and where its events came from."""

    columns: dict[str, ColumnStats] = field(default_factory=dict)
    events: int = 0
    kafka_max: int = -1
    offset_min: int = 2**62
    offset_max: int = -1
    journaled: bool = False
    """Every event of the tile went to the journal (as an open tile's): the values its
    percentiles keep are stored there, and the tile's chunks stay while the tile does."""

    def to_doc(self, *, journal: bool = False) -> list[Any]:
        """The tile as a JSON-able document (the state table's).

        ``journal``: the journal is stored beside it; a journaled tile's kept values are left
        out (:meth:`fill_from` takes them back).
        """
        omit = journal and self.journaled
        doc = [
            self.events, self.kafka_max, self.offset_min, self.offset_max,
            {name: stats.to_doc(kept=not omit) for name, stats in self.columns.items()},
        ]  # fmt: skip
        return [*doc, True] if omit else doc

    @classmethod
    def from_doc(cls, doc: list[Any]) -> TileStats:
        """The tile a :meth:`to_doc` document holds (its omitted kept values still empty)."""
        events, kafka_max, offset_min, offset_max, columns = doc[:5]
        return cls(
            {name: ColumnStats.from_doc(d) for name, d in columns.items()},
            events, kafka_max, offset_min, offset_max, len(doc) > 5,
        )  # fmt: skip

    @property
    def keeps_values(self) -> bool:
        """Whether some column keeps every value (a percentile reads it)."""
        return any(c.kept is not None for c in self.columns.values())

    def fill_from(self, chunk: EventChunk) -> None:
        """Add the values of one of its journal chunks (in journal order) to the kept ones."""
        values = chunk.values()
        for name, stats in self.columns.items():
            if stats.kept is not None and name in values:
                column = values[name]
                stats.kept.frombytes(column[~np.isnan(column)].tobytes())

    def check_filled(self, entity: str, start: int) -> None:
        """Raise if the journal did not give back every value the tile keeps.

        Raises:
            ValueError: a kept column has fewer or more values than the tile counted.
        """
        for name, stats in self.columns.items():
            if stats.kept is not None and len(stats.kept) != stats.n:
                raise ValueError(
                    f"the journal of the stored state holds {len(stats.kept)} values of column"
                    f" {name!r} for entity {entity!r}'s tile at {start} µs, which counted"
                    f" {stats.n}; run `featurestore processors reset` (the tables are rebuilt"
                    " from the log)"
                )


@dataclass
class OpenTile:
    """The accepted events of an open tile, in log order (columns as numpy arrays)."""

    event_us: I64
    offset: I64
    kafka_ms: I64
    values: dict[str, F64]
    ids: list[str]
    unsaved: int = 0
    """How many of the last events are not journaled yet."""
    id_set: set[str] = field(default_factory=set, repr=False, compare=False)
    """:attr:`ids` as a set, for deduplication."""
    ordered: bool = field(default=True, repr=False, compare=False)
    """Whether the events came in time order (then log order is (time, offset) order)."""
    start_n: int = field(default=0, repr=False, compare=False)
    """Events before the last fold; :attr:`start` holds their statistics (in memory only)."""
    start: dict[str, ColumnStats] = field(default_factory=dict, repr=False, compare=False)
    _buffers: dict[str, npt.NDArray[Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Each column's buffer (the column is a view of its filled part), by column."""

    def __post_init__(self) -> None:
        """Index the ids and note whether the events are in time order."""
        self.id_set = set(self.ids)
        times = self.event_us
        self.ordered = bool(len(times) < 2 or (times[1:] >= times[:-1]).all())

    @classmethod
    def empty(cls, columns: Iterable[str]) -> OpenTile:
        """A tile without events, with the ``columns`` given."""
        e = np.empty(0, np.int64)
        return cls(e, e, e, {c: np.empty(0) for c in columns}, [])

    def __len__(self) -> int:
        """The number of events."""
        return len(self.event_us)

    def extend(self, other: OpenTile) -> None:
        """Append the events of ``other`` after these."""
        self.append(other.event_us, other.offset, other.kafka_ms, other.values, other.ids)

    def append(
        self, event_us: I64, offset: I64, kafka_ms: I64, values: dict[str, F64], ids: list[str]
    ) -> None:
        """Append events after these (columns of equal length, in log order).

        The columns grow in buffers of doubling capacity (each is a view of its buffer's
        filled part), so appending a batch costs the batch, not the whole tile again.
        """
        if not len(event_us):
            return
        self.ordered = (
            self.ordered
            and bool(len(event_us) < 2 or (event_us[1:] >= event_us[:-1]).all())
            and (not len(self) or int(event_us[0]) >= int(self.event_us[-1]))
        )
        self.event_us = self._appended("event_us", self.event_us, event_us)
        self.offset = self._appended("offset", self.offset, offset)
        self.kafka_ms = self._appended("kafka_ms", self.kafka_ms, kafka_ms)
        for name in self.values:
            self.values[name] = self._appended(f"value {name}", self.values[name], values[name])
        self.ids.extend(ids)
        self.id_set.update(ids)
        self.unsaved += len(event_us)

    def _appended(self, key: str, column: npt.NDArray[Any], new: npt.NDArray[Any]) -> Any:
        """``column`` followed by ``new``, written into its buffer while the buffer has room."""
        n, k = len(column), len(new)
        buffer = self._buffers.get(key)
        if buffer is None or column.base is not buffer or len(buffer) < n + k:
            buffer = self._buffers[key] = np.empty(max(2 * (n + k), 64), dtype=column.dtype)
            buffer[:n] = column
        buffer[n : n + k] = new
        return buffer[: n + k]

    def pack(self, start: int = 0) -> bytes:
        """The numeric columns as bytes: a JSON header line, then the arrays.

        ``start``: only the events from that index on (the journal's new events).
        """
        names = sorted(self.values)
        header = json.dumps({"n": len(self) - start, "columns": names}).encode() + b"\n"
        arrays = [self.event_us, self.offset, self.kafka_ms, *(self.values[n] for n in names)]
        return header + b"".join(np.ascontiguousarray(a[start:]).tobytes() for a in arrays)

    @classmethod
    def unpack(cls, data: bytes, ids: list[str]) -> OpenTile:
        """Read what :meth:`pack` wrote."""
        cut = data.index(b"\n")
        header = json.loads(data[:cut])
        n, names = header["n"], header["columns"]
        body = memoryview(data)[cut + 1 :]

        def part(i: int) -> bytes:
            return bytes(body[i * 8 * n : (i + 1) * 8 * n])

        ints = [np.frombuffer(part(i), np.int64).copy() for i in range(3)]
        floats = {
            name: np.frombuffer(part(3 + i), np.float64).copy() for i, name in enumerate(names)
        }
        return cls(ints[0], ints[1], ints[2], floats, list(ids))


@dataclass
class EntityState:
    """Everything the engine keeps about one entity of a partition."""

    tiles: dict[int, TileStats] = field(default_factory=dict)
    open: dict[int, OpenTile] = field(default_factory=dict)
    """Events of open tiles, by tile start."""
    prev: dict[str, float] = field(default_factory=dict)
    """The last accepted value of each field ``prev()`` reads."""

    def window_summary(self, column: str, start: int, stop: int, tile: int) -> Summary:
        """Merged statistics of ``column`` over the tiles in ``[start, stop)``."""
        out = Summary()
        for k in range(start, stop, tile):
            stats = self.tiles.get(k)
            if stats is not None:
                col = stats.columns.get(column)
                if col is not None and col.n:
                    out.merge(col.summary())
        return out

    def tiles_meta(self, start: int, stop: int, tile: int) -> tuple[int, int, int, int]:
        """(events, Kafka max, offset min, offset max) of the tiles in ``[start, stop)``."""
        events, kafka, lo, hi = 0, -1, 2**62, -1
        for k in range(start, stop, tile):
            t = self.tiles.get(k)
            if t is not None and t.events:
                events += t.events
                kafka = max(kafka, t.kafka_max)
                lo = min(lo, t.offset_min)
                hi = max(hi, t.offset_max)
        return events, kafka, lo, hi

    def oldest_journaled(self) -> int:
        """The start of its oldest tile whose journal chunks are still read on load."""
        kept = (k for k, t in self.tiles.items() if t.journaled and t.keeps_values)
        return min(min(self.open, default=NO_OPEN_TILE), min(kept, default=NO_OPEN_TILE))

    def id_tile(self, event_id: str) -> int | None:
        """The open tile holding an event with this id, if any."""
        for start, tile in self.open.items():
            if event_id in tile.id_set:
                return start
        return None


@dataclass
class PartitionFeatureState:
    """The engine's state for one Kafka partition of a topic."""

    watermark_us: int | None = None
    """The latest accepted event time of the partition."""
    closed_us: int | None = None
    """Boundaries up to this time have had their rows emitted (watermark - lateness)."""
    entities: dict[str, EntityState] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list, repr=False)
    """Entities dropped by :meth:`forget_idle` since the last :meth:`horizons`."""
    journal: bool = field(default=False, repr=False)
    """Its events are journaled (:meth:`take_new_events` after each step): a processor's own
    state is; one computed once and dropped (a backfill's frame, a test's) is not."""
    closing: list[EventChunk] = field(default_factory=list, repr=False)
    """Events not journaled yet of journaled tiles that closed (:meth:`close_open_tile`)."""

    def entity(self, name: str) -> EntityState:
        """The state of entity ``name``, created empty on first use."""
        state = self.entities.get(name)
        if state is None:
            state = self.entities[name] = EntityState()
        return state

    def forget_idle(self) -> None:
        """Drop the entities that hold nothing: no tile, no open tile, no ``prev()`` value.

        Such an entity is what :meth:`entity` would make again on its next event, so dropping
        it changes no row; without this, every entity a partition ever saw (hosts, containers,
        symbols delisted) stayed in memory, in every close's loop and in every stored state.
        Its horizon is still given once (:meth:`horizons`), so that its journaled events go.
        """
        idle = [name for name, e in self.entities.items() if not (e.tiles or e.open or e.prev)]
        for name in idle:
            del self.entities[name]
        self.forgotten.extend(idle)

    def close_open_tile(self, name: str, start: int) -> None:
        """Drop the events of entity ``name``'s open tile at ``start``, which has closed.

        Where the tile is journaled, its events not journaled yet go to the journal first
        (:meth:`take_new_events`): its kept values are read back from there.
        """
        entity = self.entities[name]
        tile = entity.open.pop(start)
        stats = entity.tiles.get(start)
        journaled = stats is not None and stats.journaled and stats.keeps_values
        if self.journal and tile.unsaved and journaled:
            first = len(tile) - tile.unsaved
            self.closing.append(EventChunk(name, start, tile.ids[first:], tile.pack(first)))

    def counts(self) -> StateCounts:
        """The tiles and open tiles' events held, over every entity."""
        tiles = events = 0
        for entity in self.entities.values():
            tiles += len(entity.tiles)
            events += sum(len(tile) for tile in entity.open.values())
        return StateCounts(tiles, events)

    def to_bytes(self, *, events: bool = True) -> bytes:
        """A versioned JSON form; floats round-trip exactly.

        Args:
            events: include the open tiles' events (False: they are journaled as
                :class:`EventChunk` rows, see :meth:`take_new_events`).
        """
        journal = not events
        doc = {
            "format": _FORMAT,
            "watermark_us": self.watermark_us,
            "closed_us": self.closed_us,
            "entities": {
                name: {
                    "tiles": [[k, t.to_doc(journal=journal)] for k, t in e.tiles.items()],
                    "prev": e.prev,
                    "open": [
                        [k, o.pack().hex(), o.ids] for k, o in e.open.items()
                    ] if events else [],
                    # Which of the journal's chunks are open tiles' (the others: closed ones').
                    **({"open_tiles": list(e.open)} if journal else {}),
                }
                for name, e in self.entities.items()
            },
        }  # fmt: skip
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(
        cls, data: bytes | None, chunks: Iterable[EventChunk] = ()
    ) -> PartitionFeatureState:
        """Read what :meth:`to_bytes` wrote, with the journaled events of open tiles."""
        # Per entity, the tiles open when it was stored (None: a state stored before closed
        # tiles were journaled, whose journal holds open tiles only).
        open_tiles: dict[str, set[int] | None] = {}
        if not data:
            state = cls()
        else:
            doc = json.loads(data)
            if doc.get("format") != _FORMAT:
                raise ValueError(f"unknown feature state format {doc.get('format')!r}")
            state = cls(doc["watermark_us"], doc["closed_us"])
            for name, e in doc["entities"].items():
                entity = state.entity(name)
                entity.tiles = {int(k): TileStats.from_doc(t) for k, t in e["tiles"]}
                entity.prev = {k: float(v) for k, v in e["prev"].items()}
                for k, packed, ids in e["open"]:
                    entity.open[int(k)] = OpenTile.unpack(bytes.fromhex(packed), ids)
                listed = e.get("open_tiles")
                open_tiles[name] = None if listed is None else {int(k) for k in listed}
        for chunk in chunks:  # in journal order: a tile's events stay in log order
            owner = state.entities.get(chunk.entity)
            if owner is None:
                continue
            stats = owner.tiles.get(chunk.tile_us)
            if stats is not None and stats.journaled:
                stats.fill_from(chunk)
            still_open = open_tiles.get(chunk.entity)
            if still_open is not None and chunk.tile_us not in still_open:
                continue  # a closed tile's: its values only
            tile = OpenTile.unpack(chunk.data, chunk.ids)
            tile.unsaved = 0
            if chunk.tile_us in owner.open:
                held = owner.open[chunk.tile_us]
                held.extend(tile)
                held.unsaved = 0
            else:
                owner.open[chunk.tile_us] = tile
        for name, entity in state.entities.items():
            for start, stats in entity.tiles.items():
                if stats.journaled:
                    stats.check_filled(name, start)
        return state

    def take_new_events(self) -> list[EventChunk]:
        """Events accepted since the last call, one chunk per entity and tile."""
        chunks, self.closing = self.closing, []
        for name, entity in self.entities.items():
            for start, tile in entity.open.items():
                if tile.unsaved:
                    first = len(tile) - tile.unsaved
                    chunks.append(EventChunk(name, start, tile.ids[first:], tile.pack(first)))
                    tile.unsaved = 0
        return chunks

    def horizons(self) -> dict[str, int]:
        """Per entity, its oldest tile whose journaled events are still read: earlier can go.

        Those read are its open tiles' and those of its journaled tiles that keep values.

        Entities forgotten since the last call are given :data:`NO_OPEN_TILE` (all can go).
        """
        forgotten = dict.fromkeys(self.forgotten, NO_OPEN_TILE)
        self.forgotten = []
        return forgotten | {name: e.oldest_journaled() for name, e in self.entities.items()}
