"""The child processes a test module starts (``python -m ...``), each in its own session with
its own log, stopped through their own process groups only; and Prometheus' samples of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

__all__ = ["Children", "prometheus_query"]


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
            _stop([child])

    def stop_all(self) -> None:
        """Stop every child (SIGTERM to all first, so that they stop side by side)."""
        children, self.running = list(self.running.values()), {}
        _stop(children)

    def log_tail(self) -> str:
        """The last lines of each child's log, for an assertion's message."""
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
            for p in sorted(self.logs.glob("*.log"))
        )


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)


def prometheus_query(url: str, expr: str) -> list[dict[str, Any]]:
    """The result of an instant query ``expr`` of the Prometheus at ``url`` (its HTTP API)."""
    reply = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result
