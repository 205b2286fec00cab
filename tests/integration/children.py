"""The child processes a test module starts (``python -m ...``), each in its own session with
its own log, stopped through their own process groups only; and a Prometheus of the module's own
that scrapes them, with its samples of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import requests

from featurestore.config import MetricsSettings
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.stack.process import stop_group
from featurestore.stack.process import wait_until
from featurestore.stack.prometheus import PrometheusServer
from tests.ports import free_port

__all__ = ["Children", "child_env", "own_prometheus", "prometheus_query"]


def child_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment of a test's children: this process's, ``settings``, then ``variables``.

    Every metrics port is 0 (a free one each): the stack's own processes hold the configured
    ports, so that a child on one of them would collide with the stack.
    """
    free_metrics = {
        f"FEATURESTORE_METRICS__{name.upper()}": "0"
        for name in MetricsSettings.model_fields
        if name.endswith("_port")
    }
    return {**os.environ, **settings_env(settings), **free_metrics, **variables}


@dataclass
class Children:
    """Children named by the test (``"processor"``, ``"grpc"``), their logs ``logs/<name>.log``."""

    env: dict[str, str]
    """The environment of every child (``start`` adds to it)."""
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """``python -m <args>`` as child ``name``."""
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", *args], env={**self.env, **(env or {})},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def cli(self, name: str, *args: str) -> None:
        """``featurestore <args>`` as child ``name``."""
        self.start(name, "featurestore.cli", *args)

    def pid(self, name: str) -> str:
        return str(self.running[name].pid)

    def stop(self, name: str) -> None:
        """Stop child ``name``: SIGTERM to its group, SIGKILL after 60 s."""
        child = self.running.pop(name, None)
        if child is not None:
            stop_group(child)

    def stop_all(self) -> None:
        """Stop every child (SIGTERM to all first, so that they stop side by side)."""
        children, self.running = list(self.running.values()), {}
        stop_group(*children)

    def log_tail(self) -> str:
        """The last lines of each child's log, for an assertion's message."""
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
            for p in sorted(self.logs.glob("*.log"))
        )


@contextmanager
def own_prometheus(stack: Settings, instance: str, **prometheus: float) -> Iterator[Settings]:
    """A second Prometheus beside the stack's, through the stack's code, on a free port with the
    ``prometheus`` settings given (``scrape_interval_s=1.0``), up for the block: yields the
    stack's settings with it, whose targets (children's metrics) it scrapes."""
    settings = stack.model_copy(
        update={
            "prometheus": stack.prometheus.model_copy(update={"port": free_port(), **prometheus})
        }
    )
    server = PrometheusServer(settings, instance=instance)
    try:
        server.prepare()
        server.launch()
        assert wait_until(server.healthy, 60), server.process.log_tail()
        yield settings
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
        for leftover in server.process.run_dir.glob(f"{server.name}.*"):  # log, lock, command
            leftover.unlink(missing_ok=True)


def prometheus_query(url: str, expr: str) -> list[dict[str, Any]]:
    """The result of an instant query ``expr`` of the Prometheus at ``url`` (its HTTP API)."""
    reply = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result
