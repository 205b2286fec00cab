"""One micro-batch's work runs on a thread of its own while Spark reads the next batch.

Spark runs a streaming query's batches one after another: its per-batch bookkeeping (offset and
commit logs, planning, the Kafka read) and the ``foreachBatch`` function never overlap. The
stream's function therefore only reads the batch (``toArrow``) and hands the records to this
pipeline; Spark then starts on the next batch while the previous one is processed. Batches are
processed one at a time and in order (a partition's records must be applied in log order), and
at most one waits: handing over batch N+1 first waits for batch N's work to end.

This is safe for exactly-once because Spark's checkpoint is not the record of what was applied:
a batch Spark marks committed before its work ends is, after a crash, read again from the state
table's offsets (:mod:`processors.state_table`), which only move in the transaction that stores
the batch's rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor

__all__ = ["BatchPipeline"]


class BatchPipeline:
    """Runs handed-over work on one thread, in order, with at most one piece in flight."""

    def __init__(self) -> None:
        """One worker thread (started by the first work), nothing in flight."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self._pending: Future[None] | None = None
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], None]) -> None:
        """Wait for the previous work to end (raising its error), then start ``work``.

        Raises:
            Exception: the previous work's error; ``work`` is then not started.
        """
        self.drain()
        with self._lock:
            self._pending = self._executor.submit(work)

    def drain(self) -> None:
        """Wait for the work in flight, if any, and raise its error."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def failure(self) -> BaseException | None:
        """The error of work that has ended in failure and was not raised yet (None if none)."""
        with self._lock:
            pending = self._pending
        if pending is None or not pending.done():
            return None
        return pending.exception()

    def close(self) -> None:
        """Wait for the work in flight (its error, if any, is raised) and stop the thread."""
        try:
            self.drain()
        finally:
            self._executor.shutdown(wait=True)
