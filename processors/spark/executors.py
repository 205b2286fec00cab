"""A processor's start on a cluster: the master answers, and an executor runs our Python.

Left to Spark, a processor pointed at a master that is down waits while Spark's driver retries
it, and a job on a cluster without free cores waits for resources forever: no error, no end.
So before Spark starts, :func:`check_master` connects to the master's port and fails at once
with a message naming it; and once the session exists, :func:`check_executors` runs a small job
on the executors, within ``FEATURESTORE_SPARK_CLUSTER__START_TIMEOUT_S``, which says what they
run (host, Python version, interpreter, environment) and refuses another Python minor version
than the driver's (pickled steps need the same).
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from featurestore.config import Settings
from featurestore.errors import ConfigurationError
from processors.executor_check import describe_python
from processors.options import ProcessorOptions
from processors.spark.session import build_session

__all__ = ["ExecutorPython", "check_executors", "check_master", "start_session"]

logger = logging.getLogger(__name__)


def check_master(master: str, timeout_s: float = 5.0) -> None:
    """Refuse a ``spark://`` master none of whose addresses accepts a connection.

    Not a retryable error: a processor that waited here would sit silently while the cluster
    is down or misnamed, so it stops and says so.

    Raises:
        ConfigurationError: no address of ``master`` answers.
    """
    if not master.startswith("spark://"):
        return
    failures: list[str] = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return
        except (OSError, ValueError) as exc:
            failures.append(f"{address}: {exc}")
    raise ConfigurationError(
        f"the Spark master {master} does not answer ({'; '.join(failures)}): start it "
        "(`featurestore cluster up` for the local one) or give the address of a running master"
    )


@dataclass(frozen=True)
class ExecutorPython:
    """What one executor's Python worker runs."""

    host: str
    version: tuple[int, int, int]
    executable: str
    prefix: str

    def describe(self) -> str:
        """One line for the log and the status file."""
        v = ".".join(map(str, self.version))
        return f"{self.host}: Python {v} {self.executable} (prefix {self.prefix})"


def check_executors(
    spark: Any, master: str, timeout_s: float, tasks: int = 2
) -> list[ExecutorPython]:
    """Run a task per slice on the executors and check their Python against the driver's.

    Raises:
        ConfigurationError: no executor ran the check within ``timeout_s``, an executor's
            Python could not start, or it has another minor version.
    """
    sc = spark.sparkContext
    group = f"featurestore-start-check-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            sc.setJobGroup(group, "featurestore: executors' Python", interruptOnCancel=True)
            slices = sc.parallelize(range(tasks), tasks)
            outcome["rows"] = slices.mapPartitions(describe_python).collect()
        except Exception as exc:  # reported below, in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="start-check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        sc.cancelJobGroup(group)
        raise ConfigurationError(
            f"no executor of {master} finished the start-up check within {timeout_s:.0f} s: "
            "either no live worker has a free core and the executor memory "
            "(FEATURESTORE_SPARK_CLUSTER__EXECUTOR_MEMORY) free (the master's page lists them), "
            "or the executors' Python fails (see the executors' stderr on the workers)"
        )
    if "error" in outcome:
        text = str(outcome["error"])
        reason = next((line for line in text.splitlines() if "Error" in line), text[:500])
        raise ConfigurationError(
            f"the executors of {master} could not run the processor's Python: {reason.strip()} "
            "(each node needs the driver's interpreter at PYSPARK_PYTHON, or set "
            "FEATURESTORE_SPARK_CLUSTER__SHIP_ENVIRONMENT=true to ship it)"
        ) from outcome["error"]
    rows = [json.loads(row) for row in outcome["rows"]]
    found = [ExecutorPython(r[0], (r[1][0], r[1][1], r[1][2]), r[2], r[3]) for r in rows]
    driver = sys.version_info[:2]
    for executor in found:
        if executor.version[:2] != driver:
            raise ConfigurationError(
                f"an executor runs Python {executor.version[0]}.{executor.version[1]} and the "
                f"driver Python {driver[0]}.{driver[1]} ({executor.describe()}): pickled steps "
                "need the same minor version on every node"
            )
    return found


def start_session(
    settings: Settings, options: ProcessorOptions
) -> tuple[Any, list[ExecutorPython]]:
    """The processor's SparkSession, with the cluster checked first when there is one.

    Returns:
        The session, and what the executors run (empty in local mode).
    """
    local = options.master.startswith("local")
    if not local:
        check_master(options.master)
    spark = build_session(settings, options)
    if local:
        return spark, []
    found = check_executors(spark, options.master, settings.spark_cluster.start_timeout_s)
    for executor in found:
        logger.info("executor %s", executor.describe())
    return spark, found
