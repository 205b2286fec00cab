"""The online store on a Redis Cluster of its own: 3 masters and 3 replicas on loopback.

The cluster is this module's (a data folder under pytest's tmp, free loopback ports, a 1 s node
timeout so a failover takes seconds), started and stopped through the stack's own code; the shared
stack serves everything else (PostgreSQL for the offline rows, MLflow for the model, Kafka for the
prediction log). Offline rows of 40 symbols go to PostgreSQL; every one of them, shuffled, goes
to the cluster through the processors' writer (write-if-newer keeps the latest); then
GetOnlineFeatures, Predict and Feast's own SDK must all see the latest offline row of each
symbol. Last, a master is SIGKILLed while calls run: each call answers the right values or fails
with UNAVAILABLE, its replica is promoted, calls succeed again, and a row written after the
failover is served.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import psycopg
import pytest
import redis
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from psycopg import sql

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.config import GrpcSettings
from featurestore.config import RedisSettings
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.definitions import market_definitions
from featurestore.offline import write_feature_rows
from featurestore.offline.tables import create_offline_tables
from featurestore.offline.tables import table_identifier
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import RedisOnlineWriter
from featurestore.online import StaticCatalog
from featurestore.online.layout import redis_key
from featurestore.online.testing import market_catalog
from featurestore.service.testing import ServerThread
from featurestore.stack import Stack
from featurestore.stack.redis import RedisServer
from featurestore.stack.redis_cluster import cluster_info
from tests.integration.online.test_feast_reads_our_writes import feast_store
from tests.integration.service.anomaly_data import create_topic
from tests.integration.service.anomaly_data import delete_topic
from tests.integration.service.mlflow_models import RegisteredModels
from tests.own_stack import own_stack
from tests.ports import free_port_block

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYMBOLS = [f"C{i:02d}" for i in range(40)]
MINUTES = 5
BARS = ["close", "volume", "vwap", "trade_count"]
ROLLING = ["vwap_5m", "sma_5"]
FEATURES = [*(f"bars_1m:{n}" for n in BARS), *(f"rolling_1m:{n}" for n in ROLLING)]
NO_RETRY = RetryPolicy(max_attempts=1)
SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass
class Cluster:
    settings: Settings
    """The shared stack's settings with this cluster as the online store."""
    stack: Stack
    killed: list[str] = field(default_factory=list)

    @property
    def redis(self) -> RedisSettings:
        return self.settings.redis

    def nodes(self) -> list[dict[str, Any]]:
        """CLUSTER NODES of a live node: address, id, flags, master id, slots."""
        for node in self.stack.redis_nodes:
            if node.name in self.killed:
                continue
            client = redis.Redis(host=self.redis.host, port=node.port, socket_timeout=2)
            with client:
                text = client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
            if isinstance(text, bytes):
                text = text.decode()
            if isinstance(text, dict):  # redis-py parses it: address -> fields
                return [
                    {"address": a, "id": f["node_id"], "flags": f["flags"].split(","),
                     "master": f["master_id"], "slots": f["slots"]}
                    for a, f in text.items()
                ]  # fmt: skip
            nodes = []
            for line in text.splitlines():
                parts = line.split()
                nodes.append(
                    {"address": parts[1].split("@")[0], "id": parts[0],
                     "flags": parts[2].split(","), "master": parts[3], "slots": parts[8:]}
                )  # fmt: skip
            return nodes
        raise AssertionError("no live node")

    def node(self, name: str) -> RedisServer:
        """The node component called ``name``."""
        return next(n for n in self.stack.redis_nodes if n.name == name)

    def node_at(self, address: str) -> RedisServer:
        """The node component listening at ``host:port``."""
        return next(n for n in self.stack.redis_nodes if address.endswith(f":{n.port}"))

    def master_of(self, key: bytes) -> str:
        """The component name of the master serving ``key``'s slot now."""
        from redis.crc import key_slot

        live = next(n for n in self.stack.redis_nodes if n.name not in self.killed)
        client = redis.Redis(host=self.redis.host, port=live.port, socket_timeout=2)
        slot = key_slot(key)
        with client:
            for entry in client.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
                if entry[0] <= slot <= entry[1]:
                    port = int(entry[2][1])
                    return next(n.name for n in self.stack.redis_nodes if n.port == port)
        raise AssertionError(f"slot {slot} not served")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, stack: Settings) -> Iterator[Cluster]:
    base = free_port_block(12)  # node n: port base + n - 1, cluster bus base + 6 + n - 1
    env = {
        "FEATURESTORE_REDIS__CLUSTER": "true",
        "FEATURESTORE_REDIS__PORT": str(base),
        "FEATURESTORE_REDIS__BUS_PORT": str(base + 6),
        "FEATURESTORE_REDIS__NODE_TIMEOUT_MS": "1000",
    }
    names = ["redis", *(f"redis-{n}" for n in range(2, 7))]
    with own_stack(tmp_path_factory.mktemp("redis-cluster"), env, names) as local:
        assert [node.name for node in local.redis_nodes] == names
        yield Cluster(stack.model_copy(update={"redis": local.settings.redis}), local)
    assert all(node.process.pid() is None for node in local.redis_nodes)


@dataclass
class Offline:
    project: str
    catalog: StaticCatalog
    rows: list[FeatureRow]
    """Every offline row, as the online writer takes them."""
    latest: dict[str, dict[str, Any]]
    """symbol -> {"view:feature": value, "_ts:view": event time} of its latest offline rows."""


def _frame(defs: Any, view: str, symbols: list[str], end: pd.Timestamp) -> pd.DataFrame:
    frames = []
    for i, symbol in enumerate(symbols):
        ts = end - pd.to_timedelta(np.arange(MINUTES)[::-1], unit="min") - pd.Timedelta(seconds=i)
        frame = pd.DataFrame({"symbol": symbol, "event_timestamp": ts})
        frame["created_timestamp"] = frame["event_timestamp"] + pd.Timedelta(seconds=1)
        for feature in defs.view(view).features:
            if feature.value_type.name == "INT64":
                frame[feature.name] = np.arange(MINUTES) + 10 * i
            else:
                frame[feature.name] = 100.0 * (i + 1) + np.arange(MINUTES) + (view == "rolling_1m")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def offline(stack: Settings) -> Iterator[Offline]:
    """Offline rows in PostgreSQL (bars of every symbol, rolling of every other), read back."""
    run = uuid.uuid4().hex[:8]
    defs = market_definitions(
        f"fs_cluster_{run}", table_prefix=f"rc{run}_", partition_interval="day"
    )
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=1)
    frames = {
        "bars_1m": _frame(defs, "bars_1m", SYMBOLS, end),
        "rolling_1m": _frame(defs, "rolling_1m", SYMBOLS[::2], end),
    }
    catalog = market_catalog(defs.project)
    latest: dict[str, dict[str, Any]] = {s: {} for s in SYMBOLS}
    rows: list[FeatureRow] = []
    try:
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            create_offline_tables(conn, defs)  # the rows only: no Feast registration needed
            for view, frame in frames.items():
                write_feature_rows(conn, defs, view, frame)
            for view, features in (("bars_1m", BARS), ("rolling_1m", ROLLING)):
                columns = [f.name for f in catalog.view(view).features]
                query = sql.SQL(
                    "SELECT DISTINCT ON (symbol) symbol, event_timestamp, {} FROM {} "
                    "ORDER BY symbol, event_timestamp DESC, created_timestamp DESC"
                ).format(
                    sql.SQL(", ").join(map(sql.Identifier, features)),
                    table_identifier(defs.view(view).source.table),
                )
                for symbol, at, *values in conn.execute(query):
                    latest[symbol][f"_ts:{view}"] = at
                    latest[symbol].update(
                        {f"{view}:{f}": v for f, v in zip(features, values, strict=True)}
                    )
                everything = sql.SQL("SELECT symbol, event_timestamp, {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    table_identifier(defs.view(view).source.table),
                )
                for symbol, at, *values in conn.execute(everything):
                    rows.append(
                        FeatureRow(
                            view,
                            EntityKey.of(symbol=symbol),
                            at,
                            dict(zip(columns, values, strict=True)),
                        )
                    )
        yield Offline(defs.project, catalog, rows, latest)
    finally:
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            for spec in defs.views:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(table_identifier(spec.source.table))
                )


@pytest.fixture(scope="module")
def written(cluster: Cluster, offline: Offline) -> Offline:
    """Every offline row written to the cluster, shuffled, by the processors' writer."""
    rows = list(offline.rows)
    random.Random(16).shuffle(rows)
    writer = RedisOnlineWriter.from_settings(cluster.redis, offline.catalog)
    try:
        result = writer.write(rows)
    finally:
        writer.close()
    assert result.written + result.stale == len(rows) and result.stale > 0
    return offline


@pytest.fixture(scope="module")
def predictions_topic(stack: Settings) -> Iterator[str]:
    name = f"predictions-cluster-{uuid.uuid4().hex[:8]}"
    create_topic(stack, name, partitions=1)
    yield name
    delete_topic(stack, name)


@pytest.fixture(scope="module")
def server(cluster: Cluster, written: Offline, predictions_topic: str) -> Iterator[ServerThread]:
    settings = cluster.settings.model_copy(
        update={
            "grpc": GrpcSettings(port=0),
            "topics": TopicSettings(predictions=predictions_topic),
        }
    )
    thread = ServerThread(settings, written.catalog)
    yield thread
    thread.stop(grace_s=0)


def test_three_masters_each_with_a_replica(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    masters = [n for n in nodes if "master" in n["flags"]]
    replicas = [n for n in nodes if "slave" in n["flags"]]
    assert len(masters) == 3 and len(replicas) == 3
    assert sorted(r["master"] for r in replicas) == sorted(m["id"] for m in masters)
    client = redis.Redis(host=cluster.redis.host, port=cluster.redis.port)
    with client:
        info = cluster_info(client)
        assert info["cluster_state"] == "ok" and info["cluster_slots_ok"] == "16384"
        with pytest.raises(redis.ResponseError, match="SELECT is not allowed in cluster mode"):
            client.execute_command("SELECT", "1")  # type: ignore[no-untyped-call]


def _expected(offline: Offline, symbol: str, feature: str) -> Any:
    return offline.latest.get(symbol, {}).get(feature)


def test_get_online_features_and_predict_equal_the_latest_offline_rows(
    cluster: Cluster, written: Offline, server: ServerThread, models: RegisteredModels
) -> None:
    keys = [redis_key(EntityKey.of(symbol=s), written.project) for s in SYMBOLS]
    assert len({cluster.master_of(k) for k in keys}) == 3  # the entities span every master
    asked = [*SYMBOLS, "GHOST"]
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=30) as client:
        for _ in range(2):  # read from Redis, then from the row cache
            result = client.get_online_features(FEATURES, entities={"symbol": asked})
            for feature in FEATURES:
                view = feature.split(":")[0]
                values = result.features[feature]
                for symbol, value in zip(asked, values, strict=True):
                    expected = _expected(written, symbol, feature)
                    if expected is None:
                        assert value.status is FeatureStatus.NOT_FOUND, (symbol, feature)
                        continue
                    assert value.status is FeatureStatus.PRESENT, (symbol, feature)
                    assert value.value == expected, (symbol, feature)
                    assert value.event_time == written.latest[symbol][f"_ts:{view}"]
        predicted = client.predict(models.name, version="1", entities={"symbol": SYMBOLS})
    matrix = [
        [
            _expected(written, s, f) if _expected(written, s, f) is not None else float("nan")
            for f in ("bars_1m:close", "rolling_1m:vwap_5m", "bars_1m:volume")
        ]
        for s in SYMBOLS
    ]
    np.testing.assert_allclose(predicted.scores, models.expected_v1(matrix), rtol=1e-9)
    for symbol, prediction in zip(SYMBOLS, predicted.predictions, strict=True):
        assert prediction.features["bars_1m:close"].value == _expected(
            written, symbol, "bars_1m:close"
        )


def test_feast_sdk_reads_the_cluster_rows(
    cluster: Cluster, written: Offline, tmp_path: Path
) -> None:
    store = feast_store(tmp_path, written.project, cluster.redis)
    response = store.get_online_features(
        features=["bars_1m:close", "bars_1m:trade_count", "bars_1m:vwap", "rolling_1m:sma_5"],
        entity_rows=[{"symbol": s} for s in SYMBOLS],
    ).to_dict()
    assert response["symbol"] == SYMBOLS
    for name, feature in (
        ("close", "bars_1m:close"),
        ("trade_count", "bars_1m:trade_count"),
        ("vwap", "bars_1m:vwap"),
        ("sma_5", "rolling_1m:sma_5"),
    ):
        assert response[name] == [_expected(written, s, feature) for s in SYMBOLS], name


def _empty_slot_key(cluster: Cluster, prefix: str) -> tuple[bytes, int]:
    """A key of this test's own whose slot holds no key yet (so it can move freely)."""
    from redis.crc import key_slot

    for i in range(1000):
        key = f"{prefix}-{uuid.uuid4().hex}-{i}".encode()
        master = cluster.node(cluster.master_of(key))
        with redis.Redis(host=cluster.redis.host, port=master.port) as client:
            count = client.execute_command("CLUSTER", "COUNTKEYSINSLOT", key_slot(key))
        if count == 0:
            return key, key_slot(key)
    raise AssertionError("no empty slot found")


def test_moved_and_ask_are_followed(cluster: Cluster) -> None:
    """A slot moved to another master (MOVED) and a slot being migrated (ASK), on real nodes.

    Slots are moved as ``redis-cli --cluster reshard`` moves them: IMPORTING on the new owner,
    MIGRATING on the old, then SETSLOT NODE on the new owner (which bumps its epoch) and on
    every other master.
    """
    import asyncio

    from featurestore.online.cluster import ClusterRedis
    from featurestore.online.rows import RowBatch

    nodes = cluster.nodes()
    ids = {n["address"]: n["id"] for n in nodes}
    masters = [
        cluster.node_at(n["address"]) for n in nodes if "master" in n["flags"] and n["slots"]
    ]

    def command(port: int, *args: Any) -> Any:
        with redis.Redis(host=cluster.redis.host, port=port) as client:
            return client.execute_command(*args)

    key, slot = _empty_slot_key(cluster, "moved")
    source = cluster.node(cluster.master_of(key))
    target = next(n for n in masters if n.name != source.name)
    source_id = ids[f"{cluster.redis.host}:{source.port}"]
    target_id = ids[f"{cluster.redis.host}:{target.port}"]

    def give(slot_owner: Any, owner_id: str, former: Any, former_id: str) -> None:
        command(slot_owner.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", former_id)
        command(former.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", owner_id)
        command(slot_owner.port, "CLUSTER", "SETSLOT", slot, "NODE", owner_id)
        for master in masters:
            if master.name != slot_owner.name:
                command(master.port, "CLUSTER", "SETSLOT", slot, "NODE", owner_id)

    batch = RowBatch.of([b"f"], [key])

    async def scenario() -> tuple[list[Any], tuple[str, int], list[Any]]:
        reader = ClusterRedis(cluster.redis.startup_nodes, timeout_s=2)
        try:
            assert await reader.hmget(batch) == [[None]]  # the slot map is loaded
            # MOVED: the (empty) slot now belongs to the target; the reader's map says source.
            give(target, target_id, source, source_id)
            command(target.port, "HSET", key, "f", "on-target")
            moved = await reader.hmget(batch)
            await asyncio.sleep(0.3)  # the map is asked again in the background
            remapped = (await reader.slot_map())[slot]
            # ASK: the slot is being migrated back, and its key has moved to the source already.
            command(source.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", target_id)
            command(target.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", source_id)
            command(target.port, "MIGRATE", cluster.redis.host, source.port, key, 0, 5000)
            with redis.Redis(host=cluster.redis.host, port=source.port) as client:
                pipe = client.pipeline(transaction=False)  # an importing node takes ASKING first
                pipe.execute_command("ASKING")
                pipe.execute_command("HSET", key, "f", "on-source")
                pipe.execute()
            asked = await reader.hmget(batch)  # target: ASK -> ASKING + HMGET on the source
            return moved, remapped, asked
        finally:
            await reader.aclose()

    try:
        moved, remapped, asked = asyncio.run(scenario())
    finally:
        command(source.port, "CLUSTER", "SETSLOT", slot, "NODE", source_id)
        for master in masters:
            if master.name != source.name:
                command(master.port, "CLUSTER", "SETSLOT", slot, "NODE", source_id)
        command(source.port, "DEL", key)
    assert moved == [[b"on-target"]]
    assert remapped == (cluster.redis.host, target.port)
    assert asked == [[b"on-source"]]


@dataclass
class Calls:
    ok: int = 0
    ok_after: int = 0
    """Successful calls that started after the replica was promoted."""
    unavailable: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    """Anything else: a wrong value, another status code."""


def _read_load(
    target: str, offline: Offline, stop: threading.Event, promoted: threading.Event, calls: Calls
) -> None:
    request = feature_service_pb2.GetOnlineFeaturesRequest()
    request.features.features.extend(FEATURES)
    request.entities["symbol"].values.extend(types_pb2.Value(string_value=s) for s in SYMBOLS)
    payload = request.SerializeToString()
    token = os.environ.get("FEATURESTORE_TOKEN")  # a secured stack's (tests/conftest.py)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/featurestore.v1.FeatureService/GetOnlineFeatures")
        while not stop.is_set():
            after = promoted.is_set()
            try:
                reply = feature_service_pb2.GetOnlineFeaturesResponse.FromString(
                    call(payload, timeout=5, metadata=metadata)
                )
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    calls.unavailable.append(exc.details() or "")
                else:
                    calls.wrong.append(f"{exc.code()}: {exc.details()}")
                continue
            for name, column in zip(reply.feature_names, reply.columns, strict=True):
                for symbol, value in zip(SYMBOLS, column.values, strict=True):
                    got = (
                        getattr(value, value.WhichOneof("kind"))
                        if value.WhichOneof("kind")
                        else None
                    )
                    if got != _expected(offline, symbol, name):
                        calls.wrong.append(f"{symbol} {name}: {got!r}")
            calls.ok += 1
            calls.ok_after += after


def test_a_master_killed_under_read_load_fails_over(
    cluster: Cluster, written: Offline, server: ServerThread
) -> None:
    # The first node: the one settings name first (clients and health probes start from it).
    victim = "redis"
    keys = {s: redis_key(EntityKey.of(symbol=s), written.project) for s in SYMBOLS}
    symbol = next(s for s in SYMBOLS if cluster.master_of(keys[s]) == victim)
    victim_node = cluster.node(victim)
    victim_address = f"{cluster.redis.host}:{victim_node.port}"
    before = {n["address"]: n for n in cluster.nodes()}
    replica = next(n for n in before.values() if n["master"] == before[victim_address]["id"])
    stop, promoted, calls = threading.Event(), threading.Event(), Calls()
    load = [
        threading.Thread(target=_read_load, args=(server.target, written, stop, promoted, calls))
        for _ in range(3)
    ]
    for thread in load:
        thread.start()
    try:
        time.sleep(0.5)
        assert calls.ok > 0 and not calls.wrong
        pid = victim_node.process.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        cluster.killed.append(victim)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            nodes = {n["address"]: n for n in cluster.nodes()}
            if (
                "master" in nodes[replica["address"]]["flags"]
                and nodes[replica["address"]]["slots"]
            ):
                promoted.set()
                break
            time.sleep(0.1)
        assert promoted.is_set(), "the killed master's replica was not promoted within 30 s"
        deadline = time.monotonic() + 20
        while calls.ok_after < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in load:
            thread.join(10)
    assert not calls.wrong, calls.wrong[:5]
    assert calls.ok_after >= 20, f"calls did not resume: {calls.ok_after} after the promotion"
    assert calls.unavailable, "no call saw the master go"
    assert cluster.master_of(keys[symbol]) != victim
    with grpc.insecure_channel(server.target) as channel:  # health follows the cluster, not node 1
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="featurestore.v1.FeatureService")
        deadline = time.monotonic() + 15
        while True:
            reply, call = health.Check.with_call(request, timeout=5)
            if reply.status == SERVING:
                break
            why = dict(call.trailing_metadata() or ()).get("featurestore-not-serving")
            assert time.monotonic() < deadline, f"FeatureService not SERVING: {why}"
            time.sleep(0.2)

    # A row written after the failover (the new master lacks the write script) is served.
    newer = written.latest[symbol]["_ts:bars_1m"] + timedelta(seconds=30)
    writer = RedisOnlineWriter.from_settings(cluster.redis, written.catalog)
    try:
        assert (
            writer.write(
                [FeatureRow("bars_1m", EntityKey.of(symbol=symbol), newer, {"close": -1.0})]
            ).written
            == 1
        )
    finally:
        writer.close()
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=10) as client:
        deadline = time.monotonic() + 5
        while True:
            value = client.get_online_features(["bars_1m:close"], entities={"symbol": [symbol]})
            (got,) = value.features["bars_1m:close"]
            if got.value == -1.0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert got.value == -1.0 and got.event_time == newer

    # The killed node, started again from its nodes.conf, rejoins as the new master's replica.
    assert cluster.stack.up([victim]).started == [victim]
    cluster.killed.remove(victim)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        back = {n["address"]: n for n in cluster.nodes()}[victim_address]
        if "slave" in back["flags"] and back["master"] == replica["id"]:
            break
        time.sleep(0.2)
    assert "slave" in back["flags"] and back["master"] == replica["id"], back
