"""State saves: what a processor writes to PostgreSQL per commit for a view with a percentile.

Each commit stores the partition's state (its JSON: the tiles' statistics) and journals the
events accepted since the last commit (``processors/state_table.py``). A percentile keeps every
value of its column in each tile its windows read. This measures, in this process and without
a server, what a processor's commits would write over one real trading day, three ways side by
side, on the same trades and steps: the JSON stored per save, the journal chunks added, and the
most the journal held.

``mean only``: a view of the 15-minute mean of the trade size, sliding by the minute.

``+ p90, values in the state``: the same view with the 15-minute 90th percentile of the size,
its kept values written in the state's JSON at every save (as before they were journaled: each
tile marked not journaled after each step).

``+ p90, values in the journal``: the same view as the processors store it now: the tiles'
events journaled once, their values left out of the JSON and read back from the journal on load.

The trades are SPY's of 2013-10-07 from ``data/market/`` (250,601 trades, read through the LEAN
adapter as ingest reads them), stepped by ``STATE_SAVES_STEP_S`` (5) seconds of event time, a
save after each step (``PartitionState.to_bytes``, ``take_new_events``, ``horizons``, the
journal's deletions then additions, as ``StateKey.save`` does). The saves' JSON time is the
median over the day's saves.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta

import numpy as np

from bench.stats import doc_paragraph
from bench.stats import markdown_table
from featurestore.config import Settings
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import SourceTable
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import StreamSource
from featurestore.ingest import LeanTradeFile
from featurestore.ingest import market_data_dir
from models.demo import trades_frame
from processors.features import EventBatch
from processors.features import EventChunk
from processors.features import ViewChain
from processors.features import compile_topic
from processors.features import process_chain
from processors.step import PartitionState

__all__ = ["run"]

OWN_STACK = True
"""No server: the harness starts none for it."""

MINUTE = timedelta(minutes=1)
DAY_FILE = "20131007_spy_Trade_Tick.csv.gz"


def _chain(percentile: bool) -> ViewChain:
    source = StreamSource(
        name="trades", topic="trades", timestamp_field="ts", entity_field="symbol",
        watermark_delay=timedelta(seconds=5), id_field="trade_id",
    )  # fmt: skip
    aggregations = [Aggregation("size", AggFunction.MEAN, 15 * MINUTE, MINUTE, "size_mean_15m")]
    if percentile:
        aggregations.append(
            Aggregation("size", AggFunction.P90, 15 * MINUTE, MINUTE, "size_p90_15m")
        )
    view = FeatureView(
        name="size_15m",
        entities=("symbol",),
        features=tuple(Feature(a.name) for a in aggregations),
        ttl=timedelta(0),
        source=SourceTable("size_15m"),
        stream=StreamComputation(source=source, aggregations=tuple(aggregations), tile=MINUTE),
    )
    return ViewChain((compile_topic([view], join_key="symbol"),))


def _batches(step_s: float) -> list[EventBatch]:
    trades = trades_frame(LeanTradeFile(market_data_dir() / DAY_FILE))
    event_us = trades["event_time"].astype("int64").to_numpy() // 1000
    cuts = np.flatnonzero(np.diff(event_us // int(step_s * 1e6))) + 1
    batches = []
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(trades)], strict=True):
        n = b - a
        batches.append(
            EventBatch.of(
                entity=trades["symbol"].iloc[a:b].tolist(),
                event_us=event_us[a:b].tolist(),
                kafka_ms=(event_us[a:b] // 1000).tolist(),
                partition=[0] * n,
                offset=list(range(a, b)),
                event_id=[str(i) for i in range(a, b)],
                fields={
                    "price": trades["price"].iloc[a:b].tolist(),
                    "size": trades["size"].iloc[a:b].astype(float).tolist(),
                },
            )
        )
    return batches


def _day(batches: list[EventBatch], percentile: bool, journaled: bool) -> list[str]:
    """One way over the day: its row of the table."""
    chain = _chain(percentile)
    state = PartitionState()
    journal: list[EventChunk] = []
    sizes: list[int] = []
    seconds: list[float] = []
    added = held = 0
    for batch in batches:
        process_chain(chain, [state.features], batch)
        if not journaled:
            for entity in state.features.entities.values():
                for tile in entity.tiles.values():
                    tile.journaled = False
        began = time.perf_counter()
        blob = state.to_bytes()
        seconds.append(time.perf_counter() - began)
        sizes.append(len(blob))
        new = state.take_new_events()
        horizons = state.horizons()
        journal = [c for c in journal if c.tile_us >= horizons.get(c.entity, -1)]
        journal += new
        added += sum(len(c.data) for c in new)
        held = max(held, sum(len(c.data) for c in journal))
    return [
        f"{statistics.median(sizes):,.0f}", f"{max(sizes):,}", f"{sum(sizes) / 1e6:,.1f}",
        f"{added / 1e6:,.1f}", f"{held / 1e3:,.0f}",
        f"{statistics.median(seconds) * 1e3:.2f}",
    ]  # fmt: skip


def run(settings: Settings | None = None) -> str:
    """Measure the three ways on the same steps and write the section."""
    del settings  # no server
    step_s = float(os.environ.get("STATE_SAVES_STEP_S", "5"))
    batches = _batches(step_s)
    ways = {
        "mean only": (False, True),
        "+ p90, values in the state": (True, False),
        "+ p90, values in the journal": (True, True),
    }
    rows = [[name, *_day(batches, *how)] for name, how in ways.items()]
    table = markdown_table(
        ["way", "state bytes a save (median)", "state bytes (max)", "state MB (day)",
         "journal MB added (day)", "journal KB held (max)", "state JSON ms (median)"],
        rows,
    )  # fmt: skip
    ways_list = "\n".join(f"- {doc_paragraph(__doc__, n)}" for n in (2, 3, 4))
    events = sum(len(b.event_us) for b in batches)
    return "\n\n".join(
        [
            doc_paragraph(__doc__, 1),
            ways_list,
            doc_paragraph(__doc__, 5),
            f"{events:,} trades, {len(batches):,} saves:",
            table,
        ]
    )


if __name__ == "__main__":
    print(run())
