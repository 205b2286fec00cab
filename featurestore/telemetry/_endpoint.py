"""The ``/metrics`` endpoint of a process, and its registration for Prometheus' discovery.

A process of the stack listens on its configured loopback port, which the generated scrape
configuration names (``featurestore/stack/prometheus_config.py``). A process asked for port 0, or
whose configured port another process holds (a second ``featurestore serve``, an ad-hoc ingest
next to the stack's feed), takes a free port and writes a target file into the targets folder
(Prometheus' ``file_sd``), removed when the process ends; a file left by a process that was
killed names its PID and is pruned by :func:`prune_targets`.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client import start_http_server

from featurestore.atomic_file import write_atomically
from featurestore.config import Settings

__all__ = ["MetricsEndpoint", "prune_targets", "serve_metrics", "targets_dir"]

logger = logging.getLogger(__name__)


def targets_dir(settings: Settings) -> Path:
    """The folder of target files Prometheus watches."""
    configured = settings.metrics.targets_dir
    if configured is not None:
        return configured.resolve()
    return settings.data_dir.resolve() / "prometheus" / "targets"


@dataclass
class MetricsEndpoint:
    """A running ``/metrics`` HTTP server (a daemon thread of ``prometheus_client``)."""

    host: str
    port: int
    target_file: Path | None
    """The discovery file this process wrote, when its port is not the configured one."""
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and remove the discovery file."""
        if self.target_file is not None:
            self.target_file.unlink(missing_ok=True)
            self.target_file = None
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(
    registry: CollectorRegistry,
    settings: Settings,
    job: str,
    port: int,
    labels: Mapping[str, str],
) -> MetricsEndpoint:
    """Serve ``registry`` on ``settings.metrics.host:port`` (see the module's docstring).

    Raises:
        OSError: the server cannot listen, for another reason than a taken port.
    """
    host = settings.metrics.host
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
        server, thread = start_http_server(0, addr=host, registry=registry)
    bound = int(server.server_port)
    target = None
    if bound != port:
        target = _register(targets_dir(settings), host, bound, {"job": job, **labels})
        # Expected beside the stack (a second server, an ad-hoc ingest): Prometheus finds the
        # port through the target file, so this is no warning.
        taken = f"port {port} is taken; " if port else ""
        logger.info("metrics on http://%s:%d/metrics (%sfound via %s)", host, bound, taken, target)
    endpoint = MetricsEndpoint(host, bound, target, server, thread)
    atexit.register(endpoint.close)
    return endpoint


def _register(folder: Path, host: str, port: int, labels: Mapping[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    path = folder / f"{labels['job']}-{pid}-{port}.json"
    entry = [{"targets": [f"{host}:{port}"], "labels": {**labels, "pid": str(pid)}}]
    write_atomically(path, json.dumps(entry))
    return path


def prune_targets(folder: Path) -> list[Path]:
    """Remove the target files of processes that are gone; returns those removed."""
    removed = []
    for path in sorted(folder.glob("*.json")):
        try:
            pid = int(json.loads(path.read_text())[0]["labels"]["pid"])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
        if not psutil.pid_exists(pid):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(path)
    return removed
