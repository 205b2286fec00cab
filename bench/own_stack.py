"""A whole stack of a benchmark's own: its data folder, every server on free loopback ports.

The chaos and soak benchmarks kill and load servers; they never do that to the shared stack
(``featurestore stack up``) that other work on the machine is using. This brings up the servers,
the definitions and first model ``make run`` needs, the services it names (feed at the given
rate, gRPC server, trades processor, scorer) and the supervisor, all under ``folder``.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.stack import Stack
from featurestore.stack.feed import FeedOptions

__all__ = ["SERVERS", "OwnStack", "free_ports"]

SERVERS = ("postgres", "redis", "kafka", "mlflow", "schema-registry")
"""The servers of the chaos and soak runs (no Prometheus: nothing reads it here)."""


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports below the ephemeral range."""
    try:
        high = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        high = 32768
    for _ in range(200):
        base = random.randrange(20000, high - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


@dataclass
class OwnStack:
    """The stack under :attr:`folder` and what was started of it."""

    folder: Path
    rate: float
    symbols: int = 20
    services: Sequence[str] = ("grpc", "processors", "scorer")
    kafka_heap: str = "512m"

    def __post_init__(self) -> None:
        base = free_ports(8)
        self.folder.mkdir(parents=True, exist_ok=True)
        jars = self.folder / "jars"
        if not jars.exists():  # resolved once for the machine's checkout: reuse them
            jars.symlink_to(load_settings().data_dir.resolve() / "jars")
        self.settings: Settings = load_settings(
            {
                "FEATURESTORE_DATA_DIR": str(self.folder),
                "FEATURESTORE_KAFKA__PORT": str(base),
                "FEATURESTORE_KAFKA__CONTROLLER_PORT": str(base + 1),
                "FEATURESTORE_KAFKA__HEAP": self.kafka_heap,
                "FEATURESTORE_POSTGRES__PORT": str(base + 2),
                "FEATURESTORE_REDIS__PORT": str(base + 3),
                "FEATURESTORE_SCHEMA_REGISTRY__PORT": str(base + 4),
                "FEATURESTORE_MLFLOW__PORT": str(base + 5),
                "FEATURESTORE_GRPC__PORT": str(base + 6),
                "FEATURESTORE_METRICS__ENABLED": "false",
                "FEATURESTORE_SUPERVISOR__INITIAL_BACKOFF_S": "0.5",
                "FEATURESTORE_SUPERVISOR__POLL_INTERVAL_S": "0.5",
            }
        )
        self.stack = Stack(
            self.settings, feed=FeedOptions(rate=self.rate, symbols=self.symbols, seed=7)
        )
        for component in self.stack.components:
            # On a 2-core machine shared at a load average of 15-20, MLflow took over 120 s and
            # the gRPC server over 60 s (their limits) to start: a benchmark waits longer.
            component.start_timeout = max(component.start_timeout, 600.0)

    def up(self) -> None:
        """Servers, definitions, first anomaly model, the services, then the supervisor."""
        from featurestore.cli.stack import _apply_definitions
        from models.bootstrap import ensure_first_models

        env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
        for key, value in env.items():
            os.environ.setdefault(key, value)
        self.stack.up(SERVERS)
        _apply_definitions(self.settings)
        if "scorer" in self.services:
            ensure_first_models(self.settings, kinds=("anomaly",))
        self.stack.start_services(self.services)
        self.stack.supervise()

    def start_feed(self) -> None:
        """The synthetic market at :attr:`rate` trades/s, supervised like the rest."""
        self.stack.start_services(["feed"])

    def stop_feed(self) -> None:
        """Stop the feed on purpose (the supervisor leaves it stopped)."""
        self.stack.feed.stop()

    def down(self) -> None:
        """Stop everything this stack started (the supervisor first)."""
        self.stack.down()
