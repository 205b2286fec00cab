"""BatchPipeline: work runs in order, one piece at a time, and a failure is raised to the caller."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from processors.spark.pipeline import BatchPipeline


def test_work_runs_in_order_and_never_overlaps() -> None:
    pipeline = BatchPipeline()
    done: list[int] = []
    running = threading.Semaphore(1)

    def work(i: int) -> None:
        assert running.acquire(blocking=False), "two pieces of work ran at once"
        time.sleep(0.002)
        done.append(i)
        running.release()

    for i in range(20):
        pipeline.submit(functools.partial(work, i))
    pipeline.close()
    assert done == list(range(20))


def test_submit_returns_while_the_work_runs() -> None:
    pipeline = BatchPipeline()
    release = threading.Event()

    def wait_for_release() -> None:
        release.wait()

    pipeline.submit(wait_for_release)
    assert pipeline.failure() is None  # still running: the caller was not held
    release.set()
    pipeline.close()


def test_a_failure_is_raised_by_the_next_submit_and_that_work_is_not_started() -> None:
    pipeline = BatchPipeline()
    started: list[str] = []

    def fail() -> None:
        raise ValueError("batch 7 could not be stored")

    pipeline.submit(fail)
    deadline = time.monotonic() + 10
    while pipeline.failure() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert isinstance(pipeline.failure(), ValueError)
    with pytest.raises(ValueError, match="batch 7"):
        pipeline.submit(lambda: started.append("next"))
    pipeline.close()
    assert started == []


def test_close_waits_for_the_work_and_raises_its_error() -> None:
    pipeline = BatchPipeline()

    def slow_failure() -> None:
        time.sleep(0.05)
        raise RuntimeError("commit failed")

    pipeline.submit(slow_failure)
    with pytest.raises(RuntimeError, match="commit failed"):
        pipeline.close()
