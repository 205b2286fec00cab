"""Start-up time of the store's own processes: exec -> healthy, each started alone.

What a restart after a crash costs (issue #15's recovery target: <= 30 s each), without the
supervisor's backoff and without load of our own: each process is launched as the stack
launches it (its component's ``launch``), against the running stack, with a data folder and
ports of its own, and timed until its component says healthy. Its CPU seconds at that moment
(the process and its children) are the part that grows with a busy machine's load: on a
shared 2-core machine, wall time is CPU time divided by the share of a core it got.

The definitions are kept beside the data folder before the first timing (as after any earlier
start), so each start is a restart's. MLflow is started once untimed (its first start creates
and migrates the database), then timed on a restart. The processor starts from the log's end
under a name of its own (``bench-startup``) and the scorer scores only rows created after its
start: nothing is written to the stack's tables. ``STARTUP_ROUNDS`` (3) rounds, each starting
every process once (``STARTUP_PROCESSES``: comma-separated names, default all).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench.own_stack import free_ports
from bench.stats import markdown_table
from featurestore.config import Settings
from featurestore.stack.base import Component
from featurestore.stack.dashboard import DashboardService
from featurestore.stack.mlflow import MlflowServer
from featurestore.stack.monitor import MonitorService
from featurestore.stack.processors import ProcessorService
from featurestore.stack.schema_registry import SchemaRegistryServer
from featurestore.stack.scorer import AnomalyScorerService
from featurestore.stack.service import GrpcService

__all__ = ["PROCESSES", "run", "time_start"]

LIMIT_S = 600.0
"""The longest a start may take before it counts as failed (a loaded machine is slow)."""


def _grpc(settings: Settings) -> Component:
    return GrpcService(settings)


def _processor(settings: Settings) -> Component:
    args = ("--topic", settings.topics.trades, "--engine", "kafka", "--metrics-port", "0",
            "--starting-offsets", "latest")  # fmt: skip
    return ProcessorService(settings, "bench-startup", args)


def _scorer(settings: Settings) -> Component:
    return AnomalyScorerService(settings)


def _registry(settings: Settings) -> Component:
    own = settings.schema_registry.model_copy(update={"port": free_ports(1)})
    return SchemaRegistryServer(settings.model_copy(update={"schema_registry": own}))


def _monitor(settings: Settings) -> Component:
    return MonitorService(settings)


def _dashboard(settings: Settings) -> Component:
    return DashboardService(settings)


def _mlflow(settings: Settings) -> Component:
    own = settings.mlflow.model_copy(update={"port": free_ports(1)})
    return MlflowServer(settings.model_copy(update={"mlflow": own}))


PROCESSES: dict[str, Callable[[Settings], Component]] = {
    "grpc": _grpc,
    "processor": _processor,
    "scorer": _scorer,
    "schema-registry": _registry,
    "monitor": _monitor,
    "dashboard": _dashboard,
    "mlflow": _mlflow,
}
"""The processes timed, each built as the stack builds it."""


_METRICS_PORTS = (
    "grpc_port", "processors_port", "scorer_port", "schema_registry_port", "monitor_port",
    "predictor_port",
)  # fmt: skip
"""Each process's /metrics port: 0, a free one (the stack's own processes hold theirs)."""


def own_settings(settings: Settings, folder: Path) -> Settings:
    """The stack's settings with a data folder and listening ports of the benchmark's own.

    The servers the processes use (the registry's and MLflow's addresses) stay the stack's; the
    registry and MLflow timed get ports of their own in their factories.
    """
    base = free_ports(2)
    return settings.model_copy(
        update={
            "data_dir": folder,
            "grpc": settings.grpc.model_copy(update={"port": base}),
            "dashboard": settings.dashboard.model_copy(update={"port": base + 1}),
            "metrics": settings.metrics.model_copy(update=dict.fromkeys(_METRICS_PORTS, 0)),
        }
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live and reaped children."""
    try:
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:4])
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # it ended meanwhile
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return float("nan")


def time_start(component: Component, limit_s: float = LIMIT_S) -> tuple[float, float]:
    """Launch ``component`` and wait until healthy; (wall seconds, CPU seconds). Stops it after.

    Raises:
        RuntimeError: it exited or was not healthy within ``limit_s``; with its log's tail.
    """
    component.prepare()
    began = time.monotonic()
    pid = component.launch()
    try:
        while not component.healthy():
            if component.process.exited_early() or time.monotonic() - began > limit_s:
                raise RuntimeError(
                    f"{component.name} did not start within {limit_s:.0f} s:\n"
                    f"{component.process.log_tail()}"
                )
            time.sleep(0.1)
        wall = time.monotonic() - began
        return wall, _cpu_seconds(pid)
    finally:
        component.stop()


def _prime(settings: Settings, names: list[str]) -> None:
    """What a restart finds: kept definitions, the scorer's champion, MLflow's database."""
    from featurestore.cli.stack import _apply_definitions
    from featurestore.definitions import PROJECT
    from featurestore.definitions.snapshot import cached_definitions
    from featurestore.errors import NotFoundError
    from models.bootstrap import ensure_first_models

    try:
        cached_definitions(settings, PROJECT)
    except NotFoundError:  # nothing applied yet: what `make run` applies
        _apply_definitions(settings)
        cached_definitions(settings, PROJECT)
    if "scorer" in names:
        ensure_first_models(settings, kinds=("anomaly",))
    if "mlflow" in names:
        time_start(_mlflow(settings))


def run(settings: Settings) -> str:
    """Time each process's start ``STARTUP_ROUNDS`` times; the medians as a table."""
    from featurestore.definitions import PROJECT
    from featurestore.definitions.snapshot import cached_definitions

    rounds = int(os.environ.get("STARTUP_ROUNDS", "3"))
    names = os.environ.get("STARTUP_PROCESSES", ",".join(PROCESSES)).split(",")
    unknown = sorted(set(names) - set(PROCESSES))
    if unknown:
        raise ValueError(f"STARTUP_PROCESSES: unknown {unknown}; known: {sorted(PROCESSES)}")
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        own = own_settings(settings, Path(folder))
        _prime(own, names)
        for _ in range(rounds):
            for name in names:
                # Kept again if the registry changed meanwhile (another client's apply): each
                # timed start is a restart's, without Feast.
                cached_definitions(own, PROJECT)
                wall, cpu = time_start(PROCESSES[name](own))
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"[startup] {name}: healthy in {wall:.1f} s, {cpu:.1f} s CPU", flush=True)
    load_after = os.getloadavg()[0]
    rows = [
        [
            name,
            statistics.median(walls[name]),
            ", ".join(f"{w:.1f}" for w in walls[name]),
            statistics.median(cpus[name]),
            "yes" if statistics.median(walls[name]) <= 30 else "no",
        ]
        for name in names
    ]
    table = markdown_table(
        ["process", "exec -> healthy s (median)", "runs s", "CPU s (median)", "<= 30 s"], rows
    )
    return (
        "#### Start-up: exec -> healthy, each process alone\n\n"
        f"Each process launched as the stack launches it, against the running stack, with its "
        f"own data folder and ports; {rounds} rounds; definitions kept beforehand (a restart's "
        f"start); MLflow timed on a restart (its database exists). CPU s: the process and its "
        f"children at the moment it was healthy. Load average (1 min): {load_before:.1f} before, "
        f"{load_after:.1f} after, on {os.cpu_count()} cores.\n\n{table}\n"
    )
