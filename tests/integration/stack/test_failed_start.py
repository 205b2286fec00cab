"""A start that fails part way leaves nothing running that its caller cannot stop.

``Stack.up`` names each server as it launches (``on_launch``), so that the test suite's and the
benchmarks' stack stop what they started even when a later server fails; ``SparkCluster.up``
stops the daemons it started itself. Stacks of their own, on free ports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.errors import BackendUnavailableError
from featurestore.stack.spark_cluster import SparkCluster
from tests.own_stack import own_stack
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_server_that_fails_leaves_the_launched_ones_named(tmp_path: Path) -> None:
    env = {
        "FEATURESTORE_POSTGRES__PORT": str(free_port()),
        "FEATURESTORE_REDIS__PORT": str(free_port()),
    }
    with own_stack(tmp_path / "stack", env, [], stop=["postgres", "redis"]) as stack:
        stack.redis.start_timeout = 0.0  # never healthy in time: a failed start
        launched: list[str] = []
        with pytest.raises(BackendUnavailableError, match="redis did not become healthy"):
            stack.up(["postgres", "redis"], on_launch=launched.append)
        assert sorted(launched) == ["postgres", "redis"]
        assert stack.postgres.process.pid() is not None  # up, and the caller knows it
        stack.down(launched)
        assert (stack.postgres.process.pid(), stack.redis.process.pid()) == (None, None)


def test_a_cluster_whose_worker_fails_stops_its_master(tmp_path: Path) -> None:
    env = {
        "FEATURESTORE_SPARK_CLUSTER__MASTER_PORT": str(free_port()),
        "FEATURESTORE_SPARK_CLUSTER__MASTER_UI_PORT": str(free_port()),
        "FEATURESTORE_SPARK_CLUSTER__WORKER_UI_PORT": str(free_port()),
        "FEATURESTORE_SPARK_CLUSTER__WORKERS": "1",
    }
    with own_stack(tmp_path / "stack", env, []) as stack:
        cluster = SparkCluster(stack.settings)
        try:
            cluster.workers[0].start_timeout = 0.0  # never healthy in time: a failed start
            with pytest.raises(BackendUnavailableError, match="spark-worker"):
                cluster.up()
            assert [d.name for d in cluster.components if d.process.pid() is not None] == []
        finally:
            cluster.down()
