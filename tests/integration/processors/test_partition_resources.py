"""A partition's connections are all closed, also when opening one of them fails.

A step that fails drops its partition's connections and the retry opens them again; with a
Redis Cluster away, opening them fails at the cluster client (it reads the slots when it is
made), after the PostgreSQL connection is open. That connection must be closed then, not left
to the garbage collector: a stream retrying through an outage would leak one per attempt.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable

import pytest
import redis

from featurestore.config import RedisSettings
from featurestore.config import Settings
from featurestore.definitions import market_definitions
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionResources
from processors.views import MaterializedViews
from tests.ports import free_port

pytestmark = pytest.mark.integration


def test_a_redis_cluster_away_leaves_no_postgres_connection_open(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("resources")
    defs = market_definitions(
        unique_name("res"), table_prefix=unique_name("res_"), source_topic=topic
    )
    away = RedisSettings(cluster=True, cluster_nodes=(f"127.0.0.1:{free_port()}",))
    settings = stack.model_copy(update={"redis": away})
    job = PartitionJob(settings, MaterializedViews.resolve(defs, topic), unique_name("resources"))
    gc.collect()  # what earlier tests left to the collector warns now, not in the recording
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(redis.exceptions.RedisClusterException) as info:
            PartitionResources(job)
        del info  # its traceback holds the frame that held the connection
        gc.collect()
    leaks = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert leaks == []
