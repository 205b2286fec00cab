"""The recorder of predictions, run by a test until it has read the events the test sent."""

from __future__ import annotations

import threading

from featurestore.config import Settings
from featurestore.events import ConfluentSchemaStore
from featurestore.offline.predictions import PredictionTable
from featurestore.offline.predictions import record_predictions

__all__ = ["run_recorder"]


def run_recorder(
    stack: Settings, topic: str, table: PredictionTable, group: str, events: int
) -> int:
    """Run the recorder until it has read ``events`` events (or 40 s); returns rows it added."""
    stop = threading.Event()
    seen: list[int] = []
    added: list[int] = []

    def on_batch(read: int, new: int) -> None:
        seen.append(read)
        if sum(seen) >= events:
            stop.set()

    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        thread = threading.Thread(
            target=lambda: added.append(
                record_predictions(
                    stack.kafka.connection, store, stack.postgres.dsn, topic, table,
                    group_id=group, stop=stop, on_batch=on_batch,
                )
            )
        )  # fmt: skip
        thread.start()
        thread.join(40)
        stop.set()
        thread.join(10)
    assert sum(seen) == events, f"the recorder read {sum(seen)} events, not {events}"
    return added[0]
