"""Stopping the Spark engine when Spark stopped under it: a SIGTERM to the process group reaches
Spark's JVM too, whose shutdown hook stops the SparkContext and then the JVM."""

from __future__ import annotations

import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from py4j.protocol import Py4JNetworkError
from pyspark import SparkContext

import processors.spark.stream as stream
from featurestore.config import Settings
from featurestore.resilience import Health
from processors.handle import EngineExitedError
from processors.options import ProcessorOptions
from processors.resilient import run_resilient_stream
from processors.spark.pipeline import BatchPipeline
from processors.spark.session import jvm_exited


class _QueryOfStoppedSpark:
    """What pyspark's StreamingQuery does once Spark stopped under it: either its calls fail
    (py4j's error while the JVM goes, the socket's once it is gone), or it has ended with
    ``ended_with``."""

    def __init__(self, error: Exception | None, ended_with: Exception | None = None) -> None:
        self.error, self.ended_with = error, ended_with

    @property
    def isActive(self) -> bool:  # noqa: N802 - pyspark's name
        return self.error is not None

    def stop(self) -> None:
        assert self.error is not None
        raise self.error

    def exception(self) -> Exception | None:
        if self.error is not None:
            raise self.error
        return self.ended_with


_ERRORS = [Py4JNetworkError("Answer from Java side is empty"), ConnectionRefusedError(111, "")]


def _as_gateway(monkeypatch: pytest.MonkeyPatch, *command: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(list(command))
    monkeypatch.setattr(SparkContext, "_gateway", SimpleNamespace(proc=process))
    return process


def test_jvm_exited_waits_for_the_gateway_process(monkeypatch: pytest.MonkeyPatch) -> None:
    ended = _as_gateway(monkeypatch, sys.executable, "-c", "pass")
    assert jvm_exited(10.0)
    assert ended.returncode == 0
    running = _as_gateway(monkeypatch, sys.executable, "-c", "import time; time.sleep(60)")
    try:
        assert not jvm_exited(0.2)
    finally:
        running.kill()
        running.wait()


def test_jvm_exited_is_false_without_a_launched_jvm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SparkContext, "_gateway", None)
    assert not jvm_exited(0.1)


def _handle_with_batch_in_flight(done: list[str], query: Any) -> stream.StreamHandle:
    pipeline = BatchPipeline()
    release = threading.Event()

    def batch() -> None:
        release.wait(5)
        done.append("batch stored")

    pipeline.submit(batch)
    threading.Timer(0.2, release.set).start()
    return stream.StreamHandle(query=query, spark=None, pipeline=pipeline)


@pytest.mark.parametrize("error", _ERRORS, ids=["py4j", "socket"])
@pytest.mark.parametrize(
    ("context_stopped", "jvm_ended"),
    [(True, False), (False, True), (False, False)],
    ids=["context-stopped", "jvm-ended", "spark-running"],
)
def test_a_failed_stop_finishes_the_batch_and_names_stopped_spark(
    monkeypatch: pytest.MonkeyPatch, error: Exception, context_stopped: bool, jvm_ended: bool
) -> None:
    """Stopped Spark is said in the store's words; Spark still running raises its own error."""
    monkeypatch.setattr(stream, "spark_stopped", lambda spark: context_stopped)
    monkeypatch.setattr(stream, "jvm_exited", lambda within_s: jvm_ended)
    done: list[str] = []
    handle = _handle_with_batch_in_flight(done, _QueryOfStoppedSpark(error))
    expected = EngineExitedError if context_stopped or jvm_ended else type(error)
    with pytest.raises(expected) as raised:
        handle.stop()
    if expected is EngineExitedError:
        assert str(raised.value).startswith("Spark stopped under the streaming query")
        assert raised.value.__cause__ is error
    assert done == ["batch stored"]


@pytest.mark.parametrize("context_stopped", [True, False], ids=["context-stopped", "running"])
def test_a_query_ended_with_an_error_is_stopped_spark_only_if_spark_stopped(
    monkeypatch: pytest.MonkeyPatch, context_stopped: bool
) -> None:
    monkeypatch.setattr(stream, "spark_stopped", lambda spark: context_stopped)
    ended_with = RuntimeError('The "collect" action failed')
    done: list[str] = []
    handle = _handle_with_batch_in_flight(done, _QueryOfStoppedSpark(None, ended_with))
    expected = EngineExitedError if context_stopped else RuntimeError
    with pytest.raises(expected) as raised:
        handle.stop()
    assert raised.value.__cause__ is ended_with
    if not context_stopped:
        assert "the processor's streaming query failed" in str(raised.value)
    assert done == ["batch stored"]


class _HandleOfEndedEngine:
    totals: dict[str, int] = {}
    reports: list[Any] = []

    def __init__(self, stop: threading.Event, set_stop: bool) -> None:
        self._stop, self._set_stop = stop, set_stop

    def wait(self, stop: threading.Event | None = None, poll_s: float = 1.0) -> None:
        if self._set_stop:
            self._stop.set()  # the signal: Python's handler and Spark's JVM both get it
        raise EngineExitedError("Spark's JVM ended before the streaming query was stopped")

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("stopping", [True, False])
def test_an_ended_engine_is_a_clean_stop_only_while_stopping(
    monkeypatch: pytest.MonkeyPatch, stopping: bool
) -> None:
    import processors.resilient as resilient

    stop = threading.Event()
    monkeypatch.setattr(
        resilient, "start_processor", lambda *_: _HandleOfEndedEngine(stop, stopping)
    )
    monkeypatch.setattr(resilient, "freeze_startup_heap", lambda: None)
    monkeypatch.setattr(sys, "setswitchinterval", lambda _: None)
    options = ProcessorOptions(name="t", project="p")
    if stopping:
        assert run_resilient_stream(Settings(), options, stop, health=Health()) == 1
    else:
        with pytest.raises(EngineExitedError):  # a crash: the supervisor starts the process again
            run_resilient_stream(Settings(), options, stop, health=Health())
