"""Three gRPC server processes behind one client: calls spread over all three, a server drained
(SIGTERM) or killed (SIGKILL) loses its share to the others without a failed call, and one that
comes back gets calls again.

Each server binds a host of its own (127.0.0.1, .2, .3, one port), as servers on three hosts
would; the SDK is given the three targets.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path

import grpc
import pytest
import requests
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import StaticCatalog
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEATURES = ["bars_1m:close", "rolling_1m:sma_5"]
_COUNT = re.compile(
    r"^featurestore_grpc_server_handling_seconds_count\{(?P<labels>[^}]*)\} (?P<n>\S+)$"
)


@dataclass
class Server:
    """One ``featurestore`` gRPC server process on its own host address."""

    host: str
    port: int
    metrics_port: int
    env: dict[str, str]
    project: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.service.balanced_server", self.project],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_serving(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.log()
                try:
                    reply = health.Check(
                        health_pb2.HealthCheckRequest(service="featurestore.v1.FeatureService"),
                        timeout=2,
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.3)
        raise AssertionError(f"server {self.target} not serving: {self.log()}")

    def calls(self) -> int:
        """GetOnlineFeatures calls this process has handled (its own metrics)."""
        if self.process is None:
            return 0
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            match = _COUNT.match(line)
            if match and "GetOnlineFeatures" in match["labels"]:
                total += float(match["n"])
        return int(total)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(30)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]


@pytest.fixture
def servers(
    stack: Settings,
    catalog: StaticCatalog,
    write_rows: Callable[[list[FeatureRow]], None],
    tmp_path: Path,
) -> Iterator[list[Server]]:
    now = datetime.now(UTC)
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol="AAPL"), now, {"close": 190.5})])
    port = free_port()
    started: list[Server] = []
    for n in (1, 2, 3):
        metrics_port = free_port()
        env = {
            **os.environ,
            **settings_env(stack),
            "FEATURESTORE_GRPC__HOST": f"127.0.0.{n}",
            "FEATURESTORE_GRPC__PORT": str(port),
            "FEATURESTORE_METRICS__GRPC_PORT": str(metrics_port),
            "FEATURESTORE_METRICS__TARGETS_DIR": str(tmp_path / "targets"),
            "FEATURESTORE_SERVICE__SHUTDOWN_GRACE_S": "2",
        }
        server = Server(
            f"127.0.0.{n}", port, metrics_port, env, catalog.project, tmp_path / f"s{n}.log"
        )
        server.start()
        started.append(server)
    try:
        for server in started:
            server.wait_serving()
        yield started
    finally:
        for server in started:
            if server.process is not None:
                server.signal(9)


def call_many(client: FeatureStoreClient, n: int) -> list[str]:
    """Make ``n`` calls; the errors seen (none expected)."""
    errors = []
    for _ in range(n):
        try:
            reply = client.get_online_features(FEATURES, entities={"symbol": ["AAPL"]})
            assert reply.to_dicts()[0]["bars_1m:close"] == 190.5
        except Exception as exc:  # counted, the test asserts there are none
            errors.append(str(exc))
    return errors


def test_calls_spread_over_three_servers_and_move_off_one_that_goes(
    servers: list[Server],
) -> None:
    first, second, third = servers
    retry = RetryPolicy(max_attempts=4)
    with FeatureStoreClient([s.target for s in servers], retry=retry, timeout_s=10) as client:
        assert call_many(client, 150) == []
        shares = [s.calls() for s in servers]
        assert sum(shares) >= 150 and min(shares) >= 30, shares  # round_robin: ~50 each
        print(f"150 calls over three servers: {shares}")

        first.signal(15)  # SIGTERM: health says NOT_SERVING, in-flight calls finish, it exits
        assert call_many(client, 50) == []
        second.signal(9)  # SIGKILL: its connection breaks, the retry goes to the third
        before = third.calls()
        assert call_many(client, 50) == []
        assert third.calls() - before >= 50

        first.start()  # back: the channel reconnects to it and sends it calls again
        first.wait_serving()
        deadline = time.monotonic() + 30
        while first.calls() < 10:
            assert time.monotonic() < deadline, "the restarted server gets no calls"
            assert call_many(client, 20) == []
