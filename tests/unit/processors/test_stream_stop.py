"""Stopping the Spark engine when its JVM is gone: a SIGTERM to the process group ends both."""

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
from processors.options import ProcessorOptions
from processors.resilient import EngineExitedError, run_resilient_stream
from processors.spark.pipeline import BatchPipeline
from processors.spark.session import jvm_exited


class _QueryOfDeadJvm:
    """What pyspark's StreamingQuery does once the JVM behind it ends: its calls fail, with
    py4j's error while the JVM goes, with the socket's once it is gone."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @property
    def isActive(self) -> bool:  # noqa: N802 - pyspark's name
        return True

    def stop(self) -> None:
        raise self.error

    def exception(self) -> None:
        raise self.error


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


def _handle_with_batch_in_flight(done: list[str], error: Exception) -> stream.StreamHandle:
    pipeline = BatchPipeline()
    release = threading.Event()

    def batch() -> None:
        release.wait(5)
        done.append("batch stored")

    pipeline.submit(batch)
    threading.Timer(0.2, release.set).start()
    return stream.StreamHandle(query=_QueryOfDeadJvm(error), spark=None, pipeline=pipeline)


@pytest.mark.parametrize("error", _ERRORS, ids=["py4j", "socket"])
@pytest.mark.parametrize("ended", [True, False], ids=["jvm-ended", "jvm-running"])
def test_a_failed_stop_finishes_the_batch_and_names_an_ended_jvm(
    monkeypatch: pytest.MonkeyPatch, error: Exception, ended: bool
) -> None:
    """An ended JVM is said in the store's words; a JVM still running raises its own error."""
    monkeypatch.setattr(stream, "jvm_exited", lambda within_s: ended)
    done: list[str] = []
    handle = _handle_with_batch_in_flight(done, error)
    expected = EngineExitedError if ended else type(error)
    with pytest.raises(expected) as raised:
        handle.stop()
    if ended:
        assert str(raised.value).startswith("Spark's JVM ended before the streaming query")
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
