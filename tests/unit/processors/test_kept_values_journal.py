"""A percentile's kept values are stored in the event journal, not rewritten at every save.

A processor stores its state's JSON at every save and journals the events accepted since the
last one. A tile whose events all went to the journal leaves its kept values out of the JSON,
keeps its chunks while the tile is kept, and takes the values back from them on load.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import StreamComputation
from processors.features import EventBatch
from processors.features import EventChunk
from processors.features import PartitionFeatureState
from processors.features import ViewChain
from processors.features import compile_topic
from processors.features import process_chain
from tests.unit.processors.stream_views import stream_view
from tests.unit.processors.stream_views import trades_source

MINUTE = timedelta(minutes=1)
T0 = 1_700_000_000_000_000  # a whole minute, in µs


def _chain(percentile: bool) -> ViewChain:
    aggregations = [Aggregation("size", AggFunction.MEAN, 15 * MINUTE, MINUTE, "mean_15m")]
    if percentile:
        aggregations.append(Aggregation("size", AggFunction.P90, 15 * MINUTE, MINUTE, "p90_15m"))
    view = stream_view(
        "v",
        StreamComputation(
            source=trades_source(timedelta(seconds=2)), aggregations=tuple(aggregations),
            tile=MINUTE,
        ),
    )  # fmt: skip
    return ViewChain((compile_topic([view], join_key="symbol"),))


def _batch(rng: np.random.Generator, first: int, n: int, start_us: int) -> EventBatch:
    """``n`` events of two symbols, 20 a second from ``start_us``, some sizes null."""
    size = rng.integers(1, 500, n).astype(float)
    size[rng.random(n) < 0.1] = np.nan
    return EventBatch.of(
        entity=rng.choice(["A", "B"], n).tolist(),
        event_us=(start_us + np.arange(n) * 50_000).tolist(),
        kafka_ms=[0] * n,
        partition=[0] * n,
        offset=list(range(first, first + n)),
        event_id=None,
        fields={"price": [1.0] * n, "size": size.tolist()},
    )


class _Processor:
    """A partition's state stored as a processor stores it: JSON, and a journal beside it."""

    def __init__(self, chain: ViewChain) -> None:
        self.chain = chain
        self.state = PartitionFeatureState(journal=True)
        self.journal: list[EventChunk] = []
        self.saved = b""

    def step(self, batch: EventBatch) -> None:
        process_chain(self.chain, [self.state], batch)
        self.save()

    def save(self) -> None:
        """As ``StateKey.save`` does: the state, the older chunks deleted, the new ones added."""
        self.saved = self.state.to_bytes(events=False)
        new = self.state.take_new_events()
        horizons = self.state.horizons()
        self.journal = [c for c in self.journal if c.tile_us >= horizons.get(c.entity, -1)]
        self.journal += new

    def load(self) -> PartitionFeatureState:
        state = PartitionFeatureState.from_bytes(self.saved, self.journal)
        state.journal = True
        return state


def _run(percentile: bool, minutes: int) -> tuple[_Processor, list[int]]:
    rng = np.random.default_rng(7)
    processor = _Processor(_chain(percentile))
    sizes = []
    for m in range(minutes):  # one step every 30 s
        for half in range(2):
            processor.step(_batch(rng, (2 * m + half) * 600, 600, T0 + (2 * m + half) * 30_000_000))
            sizes.append(len(processor.saved))
    return processor, sizes


def _kept(state: PartitionFeatureState) -> dict[tuple[str, int], list[float] | None]:
    """Each tile's kept values (copies: the state goes on)."""
    return {
        (name, k): None if t.columns["size"].kept is None else list(t.columns["size"].kept)
        for name, e in state.entities.items()
        for k, t in e.tiles.items()
    }


def test_the_stored_state_does_not_grow_with_a_percentile_s_values() -> None:
    with_p90, sizes = _run(True, 30)
    _, plain_sizes = _run(False, 30)
    # 17 tiles of ~1,100 values each (the window's, a slide, the open one), none of them in the
    # JSON: its size
    # is the plain view's, but for the tiles' (empty) lists and the open tiles' starts.
    assert max(sizes) < 1.5 * max(plain_sizes)
    doc = json.loads(with_p90.saved)
    tiles = [t for e in doc["entities"].values() for _, t in e["tiles"]]
    assert len(tiles) >= 30 and all(t[5] is True and t[4]["size"][10] == [] for t in tiles)
    # The journal holds the chunks of the tiles held, no other.
    held = {(n, k) for n, e in with_p90.state.entities.items() for k in [*e.tiles, *e.open]}
    assert {(c.entity, c.tile_us) for c in with_p90.journal} == held
    # Every value comes back from the journal, in log order.
    kept = _kept(with_p90.state)
    assert sum(len(v or ()) for v in kept.values()) > 15_000
    assert _kept(with_p90.load()) == kept


def test_rows_after_reloads_equal_rows_without_them() -> None:
    rng = np.random.default_rng(3)
    batches = [_batch(rng, i * 600, 600, T0 + i * 30_000_000) for i in range(40)]
    chain = _chain(True)
    straight, reloaded = _Processor(chain), _Processor(chain)
    p90: dict[str, list[float]] = {"straight": [], "reloaded": []}
    kept: dict[str, list[object]] = {"straight": [], "reloaded": []}
    for i, batch in enumerate(batches):
        if i % 3 == 2:
            reloaded.state = reloaded.load()
        for label, processor in (("straight", straight), ("reloaded", reloaded)):
            out = process_chain(processor.chain, [processor.state], batch)
            p90[label] += np.asarray(out.rows["v"]["p90_15m"]).tolist()
            processor.save()
            kept[label].append(_kept(processor.state))
    assert p90["reloaded"] == p90["straight"] and len(p90["straight"]) >= 38
    assert kept["reloaded"] == kept["straight"]


def test_a_step_longer_than_the_horizon_journals_only_the_tiles_still_held() -> None:
    """Catching up: tiles that close and are dropped within the step journal nothing."""
    processor = _Processor(_chain(True))
    processor.step(_batch(np.random.default_rng(5), 0, 36_000, T0))  # 30 minutes in one step
    state = processor.state
    held = {(n, k) for n, e in state.entities.items() for k in [*e.tiles, *e.open]}
    assert {(c.entity, c.tile_us) for c in processor.journal} == held
    assert len(held) == 2 * 17  # two symbols: the window's tiles, a slide and the open one
    assert _kept(processor.load()) == _kept(state)


def test_a_journal_that_lost_a_closed_tile_s_chunk_is_refused_by_name() -> None:
    processor, _ = _run(True, 20)
    oldest = min(c.tile_us for c in processor.journal if c.entity == "A")
    processor.journal = [
        c for c in processor.journal if not (c.entity == "A" and c.tile_us == oldest)
    ]
    with pytest.raises(ValueError) as info:
        processor.load()
    message = str(info.value)
    assert f"column 'size' for entity 'A''s tile at {oldest} µs" in message
    assert "featurestore processors reset" in message


def test_a_state_stored_with_its_values_inline_still_loads_and_keeps_them_inline() -> None:
    """A state saved before the values were journaled: its journal holds open tiles only."""
    processor, _ = _run(True, 20)
    state = processor.state
    for entity in state.entities.values():
        for tile in entity.tiles.values():
            tile.journaled = False  # as tiles made before
    inline = state.to_bytes(events=False)
    doc = json.loads(inline)
    for e in doc["entities"].values():
        del e["open_tiles"]  # as states stored before
    open_chunks = [c for c in processor.journal if c.tile_us in state.entities[c.entity].open]
    loaded = PartitionFeatureState.from_bytes(json.dumps(doc).encode(), open_chunks)
    assert _kept(loaded) == _kept(state)
    assert {n: set(e.open) for n, e in loaded.entities.items()} == {
        n: set(e.open) for n, e in state.entities.items()
    }
    # Saved again, those tiles keep their values inline (their chunks are not all journaled).
    again = PartitionFeatureState.from_bytes(loaded.to_bytes(events=False), open_chunks)
    assert _kept(again) == _kept(state)
