"""A Spark driver stopped under a running query, as a SIGTERM to the whole process group does
(Spark's JVM gets it too: its shutdown hook stops the SparkContext, then the JVM exits), stops
with :class:`~processors.handle.EngineExitedError`, not with py4j's, the socket's or the
query's errors.

Each case in a child process of its own: stopping this pytest process's Spark would end every
later Spark test's session.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.integration.processors.spark_child import run_driver

pytestmark = pytest.mark.integration

_DRIVER = textwrap.dedent(
    """
    import signal, sys, time
    from pyspark import SparkContext
    from processors.handle import EngineExitedError
    from processors.spark.stream import StreamHandle
    from tests.integration.processors.spark_child import local_session

    checkpoint, case = sys.argv[1:]
    spark = local_session()
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 1000).load()
        .writeStream.format("noop").option("checkpointLocation", checkpoint).start()
    )
    while query.lastProgress is None:  # a batch ran
        time.sleep(0.1)
    handle = StreamHandle(query=query, spark=spark)
    if case == "jvm-ended":
        jvm = SparkContext._gateway.proc
        jvm.send_signal(signal.SIGTERM)
        jvm.wait(60)
    else:  # what the shutdown hook does first; the query then fails, or refuses to stop
        spark.sparkContext._jsc.sc().stop()
        if case == "query-ended":
            deadline = time.monotonic() + 60
            while query.isActive and time.monotonic() < deadline:
                time.sleep(0.1)
            print(f"query ended: {query.exception() is not None}")
    try:
        handle.stop()
    except EngineExitedError as exc:
        print(f"EngineExitedError: {exc}")
    """
)


@pytest.mark.parametrize("case", ["jvm-ended", "context-stopped", "query-ended"])
def test_stop_after_spark_stopped_raises_engine_exited(tmp_path: Path, case: str) -> None:
    done = run_driver(_DRIVER, str(tmp_path / "checkpoint"), case, cwd=tmp_path, timeout_s=180)
    assert "EngineExitedError: Spark stopped under the streaming query" in done.stdout, (
        done.stdout + done.stderr[-3000:]
    )
    if case == "query-ended":
        assert "query ended: True" in done.stdout  # the case it names: ended with an error
    assert done.returncode == 0, done.stderr[-3000:]
