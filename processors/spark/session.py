"""A SparkSession set up for this machine: loopback only, our jars, Python workers reused."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from py4j.protocol import Py4JError

from featurestore.config import Settings
from featurestore.stack.jars import resolve_jars
from processors.options import ProcessorOptions
from processors.spark.shipping import shipped_environment

__all__ = ["JVM_GONE_ERRORS", "build_session", "jvm_exited", "spark_stopped"]

JVM_GONE_ERRORS: tuple[type[Exception], ...] = (Py4JError, OSError)
"""What a call into Spark's JVM raises once the JVM is stopping or gone: py4j's errors, or its
socket's."""


def build_session(settings: Settings, options: ProcessorOptions) -> Any:
    """Create (or reuse) the process's SparkSession for ``options``.

    The Kafka connector jars come from Maven through ``deploy/jvm/pom.xml`` (Spark's own Ivy
    download is not used). Python workers run this interpreter; the driver and the UI bind to
    loopback only when the master is local. On a cluster with
    ``FEATURESTORE_SPARK_CLUSTER__SHIP_ENVIRONMENT`` the executors' Python and the project's code
    travel with the application (:mod:`processors.spark.shipping`).
    """
    jars = sorted(str(p) for p in resolve_jars(settings, "spark").glob("*.jar"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = options.master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    # One scratch folder per stack, not per processor: getOrCreate hands a later processor of
    # the same Python process the first one's session, whose block manager keeps this folder.
    scratch = settings.data_dir.resolve() / "spark" / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(options.master)
        .appName(f"featurestore-processor-{options.name}")
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # pyspark's own pandas calls warn on every batch; keep the workers' logs readable.
        .config("spark.executorEnv.PYTHONWARNINGS", "ignore::FutureWarning")
        .config("spark.local.dir", str(scratch))
        # The driver's temporary folders too: Spark deletes them at a clean exit only.
        .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={scratch}")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.sql.adaptive.enabled", "false")
        # The checkpoint is scratch (a run starts from the state table): write its offset and
        # commit logs through the plain FileSystem API without checksum files: the defaults
        # (FileContext, checksummed local FS) make each log write several times slower, and a
        # micro-batch writes several (processors/README.md has the figures).
        .config(
            "spark.sql.streaming.checkpointFileManagerClass",
            "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager",
        )
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .config("spark.driver.memory", os.environ.get("FEATURESTORE_SPARK_DRIVER_MEMORY", "2g"))
    )
    if local:
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    shipped = None
    if not local:  # executors elsewhere call the driver back: its address is configuration
        cluster = settings.spark_cluster
        builder = (
            builder.config("spark.driver.host", cluster.driver_host)
            .config("spark.driver.bindAddress", cluster.driver_host)
            .config("spark.executor.memory", cluster.executor_memory)
            # An executor copies each shipped archive into a temporary folder before unpacking
            # it in its working directory; Spark deletes the copy at a clean exit only, so an
            # executor killed with its worker left 125 MB in the node's /tmp. In the working
            # directory (the worker's to clean) it goes with the application's other files.
            .config("spark.executor.extraJavaOptions", "-Djava.io.tmpdir=.")
        )
        shipped = shipped_environment(settings)
        if shipped is not None:
            for key, value in shipped.spark_conf().items():
                builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if shipped is not None:
        # The interpreter Python tasks start with: pyspark reads it from PYSPARK_PYTHON once,
        # when the context is made; set here, it does not leak into later local sessions.
        spark.sparkContext.pythonExec = shipped.python
    return spark


def jvm_exited(within_s: float) -> bool:
    """Whether this driver's JVM (the Py4J gateway pyspark launched) exits within ``within_s`` s.

    False when no JVM was launched by this process.
    """
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)  # set by pyspark's launch_gateway
    if not isinstance(process, subprocess.Popen):
        return False
    try:
        process.wait(within_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def spark_stopped(spark: Any) -> bool:
    """Whether ``spark``'s SparkContext has stopped, or its JVM no longer answers.

    The JVM's shutdown hook (SIGTERM) stops the context first: a query it was running then
    fails, or refuses to be stopped.
    """
    try:
        return bool(spark.sparkContext._jsc.sc().isStopped())
    except JVM_GONE_ERRORS:
        return True
