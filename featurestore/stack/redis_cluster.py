"""Form the local Redis Cluster from its freshly started nodes, as ``redis-cli --cluster create``.

The first ``cluster_masters`` nodes take the 16384 hash slots in equal ranges, every node meets
the first (gossip spreads the rest), and the remaining nodes become replicas, node
``masters + k`` of master ``k % masters + 1``. Then it waits until every node says
``cluster_state:ok`` and every master has its replicas in sync.

Forming happens once: nodes that already form a cluster of the expected size are only waited
for; nodes with slots but not a full cluster (a formation cut short, data of another size) are
refused with what to do, rather than patched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from featurestore.config import RedisSettings
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError

__all__ = ["cluster_info", "ensure_cluster", "slot_ranges"]

SLOTS = 16384


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The slot range (first, last) of each master: as equal as integers allow."""
    bounds = [round(i * SLOTS / masters) for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


def _command(client: redis.Redis, *args: str | int) -> Any:
    """One command (redis-py leaves ``execute_command`` unannotated)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def cluster_info(client: redis.Redis) -> dict[str, str]:
    """``CLUSTER INFO`` as a dict of strings."""
    raw = _command(client, "CLUSTER", "INFO")
    if isinstance(raw, dict):  # redis-py parses it already
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _wait(what: str, check: Callable[[], bool], deadline: float, hint: str) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise BackendUnavailableError(f"the local Redis Cluster: {what}; {hint}")
        time.sleep(0.1)


def ensure_cluster(cfg: RedisSettings, timeout_s: float = 60.0) -> None:
    """Form the cluster of the local nodes unless they form it already; wait until it serves.

    Raises:
        ConfigurationError: the nodes hold a cluster of another shape, or half of one.
        BackendUnavailableError: it did not come to serve within ``timeout_s``.
    """
    nodes = [
        (cfg.host, cfg.node_port(n), cfg.node_bus_port(n)) for n in range(1, cfg.local_nodes + 1)
    ]
    clients = [redis.Redis(host=h, port=p, socket_timeout=5) for h, p, _ in nodes]
    deadline = time.monotonic() + timeout_s
    hint = f"see the logs of the redis nodes under {cfg.host}:{cfg.port}"
    try:
        infos = [cluster_info(c) for c in clients]
        assigned = [int(i.get("cluster_slots_assigned", "0")) for i in infos]
        if any(assigned):
            known = {int(i.get("cluster_known_nodes", "0")) for i in infos}
            if known != {len(nodes)} or set(assigned) != {SLOTS}:
                raise ConfigurationError(
                    f"the local Redis nodes hold a cluster that is not the {cfg.cluster_masters} "
                    f"masters x {1 + cfg.cluster_replicas} of the settings (nodes know "
                    f"{sorted(known)} nodes, slots assigned {assigned}): set the settings back, "
                    "or stop the stack and use a fresh FEATURESTORE_DATA_DIR"
                )
        else:
            _form(cfg, clients, nodes, deadline, hint)

        def serving() -> bool:
            return all(cluster_info(c).get("cluster_state") == "ok" for c in clients)

        _wait("not every node says cluster_state:ok", serving, deadline, hint)
        masters = clients[: cfg.cluster_masters]

        def replicas_in_sync() -> bool:
            for client in masters:
                info: dict[str, Any] = client.info("replication")  # type: ignore[assignment]
                if info.get("role") != "master":
                    return True  # failed over since: the cluster is formed and serving
                online = [
                    v for k, v in info.items()
                    if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
                ]  # fmt: skip
                if len(online) < cfg.cluster_replicas:
                    return False
            return True

        _wait("replicas did not come in sync", replicas_in_sync, deadline, hint)
    finally:
        for client in clients:
            client.close()


def _form(
    cfg: RedisSettings,
    clients: list[redis.Redis],
    nodes: list[tuple[str, int, int]],
    deadline: float,
    hint: str,
) -> None:
    for epoch, client in enumerate(clients, start=1):
        _command(client, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
    for client, (first, last) in zip(clients, slot_ranges(cfg.cluster_masters), strict=False):
        _command(client, "CLUSTER", "ADDSLOTSRANGE", first, last)
    for host, port, bus in nodes[1:]:
        _command(clients[0], "CLUSTER", "MEET", host, port, bus)

    def all_met() -> bool:
        return all(int(cluster_info(c)["cluster_known_nodes"]) == len(nodes) for c in clients)

    _wait("the nodes did not all meet", all_met, deadline, hint)
    ids = [_decoded(_command(c, "CLUSTER", "MYID")) for c in clients]
    for k, replica in enumerate(clients[cfg.cluster_masters :]):
        master_id = ids[k % cfg.cluster_masters]

        def replicated(r: redis.Redis = replica, m: str = master_id) -> bool:
            try:
                _command(r, "CLUSTER", "REPLICATE", m)
            except redis.ResponseError:  # the replica has not heard of the master yet
                return False
            return True

        _wait("a replica could not replicate its master", replicated, deadline, hint)


def _decoded(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
