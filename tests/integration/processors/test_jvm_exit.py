"""A Spark driver whose JVM ends under a running query (SIGTERM to the whole process group)
stops with :class:`~processors.resilient.EngineExitedError`, not with py4j's socket errors.

A child process of its own: ending the JVM of this pytest process would end every later Spark
test's session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

_DRIVER = textwrap.dedent(
    """
    import signal, sys
    from pyspark import SparkContext
    from pyspark.sql import SparkSession
    from processors.resilient import EngineExitedError
    from processors.spark.stream import StreamHandle

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 10).load()
        .writeStream.format("noop").option("checkpointLocation", sys.argv[1]).start()
    )
    handle = StreamHandle(query=query, spark=spark)
    jvm = SparkContext._gateway.proc
    jvm.send_signal(signal.SIGTERM)  # what a SIGTERM to the process group does to it
    jvm.wait(60)
    try:
        handle.stop()
    except EngineExitedError as exc:
        print(f"EngineExitedError: {exc}")
    """
)


def test_stop_after_the_jvm_ended_raises_engine_exited(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(tmp_path / "checkpoint")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "EngineExitedError: Spark's JVM ended before the streaming query was stopped" in (
        done.stdout
    ), done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
