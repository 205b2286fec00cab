"""A running engine, as :mod:`processors.resilient` waits on it and each engine implements it.

Apart from both, so that an engine (``processors/spark/stream.py``, ``processors/kafka_engine.py``)
and the runner that starts it do not import each other.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from processors.report import BatchReport

__all__ = ["EngineExitedError", "ProcessorHandle"]


class EngineExitedError(RuntimeError):
    """The engine's runtime stopped under a running handle (Spark's context, or its JVM).

    While the process stops this is the signal reaching the whole process group (Spark's JVM
    runs its shutdown hook), and the stop is clean: each batch's work is finished or left to the
    next start, which reads from the state table's offsets. Otherwise it is a crash.
    """


class ProcessorHandle(Protocol):
    """A running engine (Spark's ``StreamHandle`` or the Kafka engine's ``ConsumerHandle``)."""

    @property
    def totals(self) -> dict[str, int]:
        """The counts summed over the batches so far."""

    @property
    def reports(self) -> Sequence[BatchReport]:
        """The latest batches' reports, in order (:data:`processors.recorder.REPORTS_KEPT`)."""

    def wait(self, stop: threading.Event | None = None, poll_s: float = 1.0) -> None:
        """Block until the engine ends (or ``stop`` is set: then stop it)."""

    def stop(self) -> None:
        """Stop the engine, finishing the batch in flight."""
