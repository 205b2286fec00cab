"""The processors on a standalone Spark cluster (a master and two workers on loopback).

The cluster is started by the project's own code (``featurestore cluster up``'s
:class:`SparkCluster`) and stopped at the end if this module started it. Real trades go through
a processor on the cluster, whose step runs in the executors' tasks, and through one in local
mode on the driver (the session's baseline run of its topic, ``conftest.py``'s ``trades_world``,
undecodable records included): the tables must be identical, also when a worker is SIGKILLed
mid-stream.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.config import Settings
from featurestore.processor_files import processor_log
from featurestore.stack.process import stop_group
from featurestore.stack.processors import start_processor
from featurestore.stack.spark_cluster import SparkCluster
from processors.status import read_status
from tests.e2e.processors_support import BASELINE
from tests.e2e.processors_support import World
from tests.e2e.processors_support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def cluster(stack: Settings) -> Iterator[SparkCluster]:
    cluster = SparkCluster(stack)
    started = cluster.up()
    try:
        yield cluster
    finally:
        for daemon in reversed(cluster.components):
            if daemon.name in started:
                daemon.stop()


WORLD_PREFIX = "cl"
"""This module's runs are named ``cl-...`` (the ``world`` fixture of ``conftest.py``)."""


@pytest.fixture(scope="module")
def local_tables(world: World) -> dict[str, tuple[int, str]]:
    """The tables of a local-mode processor (the step on the driver), read to the end: the
    session's baseline run."""
    return world.sums(BASELINE)


def test_shipped_environment_on_executors_with_a_worker_sigkilled_equals_local_mode(
    world: World, cluster: SparkCluster, local_tables: dict[str, tuple[int, str]], tmp_path: Path
) -> None:
    """The step runs in the executors' tasks, whose Python is the packed copy Spark unpacked in
    their working folder (SHIP_ENVIRONMENT, spark.archives), not the driver's venv the workers
    were started with; the checkpoint is in the configured folder (shared storage). One worker
    (with its executor and Python workers) is SIGKILLed after two batches: its tasks run again
    on the other, nothing is lost or written twice (the tables' checksums cover every row,
    lineage included).

    One run checks both: each costs a Spark application start and a whole stream on this
    2-core machine."""
    label = "cluster"
    opts = world.options(label)
    checkpoints = tmp_path / "checkpoints"
    process = start_processor(
        world.settings, opts.name, opts.project, world.topic,
        "--max-offsets", "3000", "--master", world.settings.spark_cluster.master_url,
        env={"FEATURESTORE_SPARK_CLUSTER__SHIP_ENVIRONMENT": "true",
             "FEATURESTORE_SPARK_CLUSTER__CHECKPOINT_DIR": str(checkpoints)},
    )  # fmt: skip
    victim = cluster.workers[0]
    status_path = opts.status_path(world.settings)
    log = processor_log(world.settings, opts.name)
    killed = False
    try:
        wait_for(
            lambda: (read_status(status_path) or {}).get("batch_id", -1) >= 1, 300, "2 batches", log
        )
        assert (checkpoints / opts.instance / "offsets").is_dir()
        status = read_status(status_path)
        assert status is not None
        assert status["executors"], "the start-up check saw no executor"
        for executor in status["executors"]:
            assert "/environment/bin/python (prefix " in executor, executor
            assert sys.prefix not in executor, executor  # not the driver's venv
        pid = victim.process.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # the worker, its executor and the executor's Python workers
        killed = True
        wait_for(lambda: world.sums(label) == local_tables, 480, "the tables after the kill", log)
        status = read_status(status_path)
        assert status is not None
        # The step ran in the executors' tasks: the driver never read a record.
        assert "spark read (toArrow)" not in status["seconds"]
    finally:
        stop_group(process)
        if killed:  # the worker again, as the cluster was (a live one is the fixture's to stop)
            victim.process.pid_file.unlink(missing_ok=True)
            cluster.up()
    assert not (checkpoints / opts.instance).exists()  # scratch: removed at stop
