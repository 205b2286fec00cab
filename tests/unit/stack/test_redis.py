"""The Redis Cluster settings and the local nodes' shape, without starting anything."""

from __future__ import annotations

import itertools

import pytest

from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.definitions.repo_config import online_store_config
from featurestore.errors import ConfigurationError
from featurestore.stack import Stack
from featurestore.stack.redis_cluster import SLOTS
from featurestore.stack.redis_cluster import slot_ranges


def test_one_server_by_default() -> None:
    settings = load_settings({})
    assert [n.name for n in Stack(settings).redis_nodes] == ["redis"]
    assert settings.redis.startup_nodes == (("127.0.0.1", 16379),)
    assert online_store_config(settings.redis) == {
        "type": "redis",
        "connection_string": "127.0.0.1:16379,db=0",
    }


def test_a_cluster_is_six_nodes_with_their_own_ports() -> None:
    settings = load_settings({"FEATURESTORE_REDIS__CLUSTER": "true"})
    stack = Stack(settings)
    nodes = stack.redis_nodes
    assert [n.name for n in nodes] == [
        "redis",
        "redis-2",
        "redis-3",
        "redis-4",
        "redis-5",
        "redis-6",
    ]
    assert [n.port for n in nodes] == list(range(16379, 16385))
    assert [settings.redis.node_bus_port(n.node) for n in nodes] == list(range(26379, 26385))
    assert len({n.data_dir for n in nodes}) == 6
    assert stack.redis is nodes[0] and all(n in stack.servers for n in nodes)
    assert online_store_config(settings.redis) == {
        "type": "redis",
        "redis_type": "redis_cluster",
        "connection_string": ",".join(f"127.0.0.1:{p}" for p in range(16379, 16385)),
    }
    # A child process rebuilds the same settings from the environment.
    assert load_settings(settings_env(settings)).redis == settings.redis


def test_an_external_cluster_is_named_by_its_nodes() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_REDIS__CLUSTER": "true",
            "FEATURESTORE_REDIS__CLUSTER_NODES": "redis-a:6379, redis-b:7000",
        }
    )
    assert settings.redis.startup_nodes == (("redis-a", 6379), ("redis-b", 7000))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FEATURESTORE_REDIS__DB": "2"}, "FEATURESTORE_REDIS__DB=2: a Redis Cluster has only"),
        (
            {"FEATURESTORE_REDIS__CLUSTER_NODES": "redis-a"},
            "'redis-a' is not of the form host:port",
        ),
        ({"FEATURESTORE_REDIS__BUS_PORT": "16380"}, "overlap or pass 65535"),
        ({"FEATURESTORE_REDIS__CLUSTER_MASTERS": "2"}, "CLUSTER_MASTERS"),
    ],
)
def test_bad_cluster_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"FEATURESTORE_REDIS__CLUSTER": "true", **env})


def test_cluster_nodes_need_the_cluster_switch() -> None:
    with pytest.raises(ConfigurationError, match="CLUSTER_NODES is set but"):
        load_settings({"FEATURESTORE_REDIS__CLUSTER_NODES": "redis-a:6379"})


@pytest.mark.parametrize("masters", [3, 4, 7])
def test_slot_ranges_cover_every_slot_once(masters: int) -> None:
    ranges = slot_ranges(masters)
    assert len(ranges) == masters and ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1
