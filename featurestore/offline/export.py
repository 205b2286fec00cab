"""Exporting a training set to a Parquet file, streamed batch by batch."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

from featurestore.offline.base import ExportStats
from featurestore.offline.base import OfflineStore
from featurestore.offline.base import TrainingRequest
from featurestore.offline.entities import EntitySource

__all__ = ["export_parquet"]


def export_parquet(
    store: OfflineStore, entities: EntitySource, request: TrainingRequest, out: Path
) -> ExportStats:
    """Write the training rows to ``out``; the file appears only once complete.

    Rows go to ``out`` with a ``.partial`` suffix first and are renamed at the end, so a failed
    export (bad entity row half-way, server gone) never leaves a truncated file that looks whole.
    """
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    rows = batches = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in store.iter_batches(entities, request):
            if writer is None:
                writer = pq.ParquetWriter(partial, batch.schema, compression="zstd")
            writer.write_batch(batch)
            rows += batch.num_rows
            batches += 1
        if writer is not None:
            writer.close()
            writer = None
        partial.replace(out)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return ExportStats(rows, batches, time.perf_counter() - started, out)
