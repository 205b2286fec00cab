"""The interface of one server of the local stack."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from typing_extensions import override

from featurestore.atomic_file import write_atomically
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.stack.process import ManagedProcess
from featurestore.stack.restart import RestartRecord

_PROMETHEUS_MULTIPROCESS = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")
"""prometheus_client's multiprocess-mode variables, which importing Feast sets (see child_env)."""

__all__ = [
    "Component",
    "ComponentStatus",
    "NodeComponent",
    "OwnProcess",
    "ReadyFileComponent",
    "answers_ok",
    "health_to_ready_file",
    "not_serving_of",
    "port_open",
    "ready_for",
    "require_binary",
    "wait_healthy",
    "write_ready_file",
]


@dataclass(frozen=True)
class ComponentStatus:
    """What ``featurestore stack status`` shows for one server."""

    name: str
    running: bool
    healthy: bool
    pid: int | None
    address: str
    restart: RestartRecord | None = None
    """What the running supervisor knows of it (restarts, last exit); None without one."""
    not_serving: dict[str, str] | None = None
    """While it runs but waits for a backend: each backend away, with what it saw."""


class Component(ABC):
    """A server the stack starts on loopback, with a PID file and a health check.

    Subclasses say how to prepare the server's data (once), how to launch it and how to tell
    that it serves. Starting is idempotent: a running, healthy server is left as it is.
    """

    name: str
    """Short name: kafka, postgres, redis, schema-registry, mlflow."""
    start_timeout: float = 60.0
    """Seconds a start may take before it counts as failed."""
    stop_signal: signal.Signals = signal.SIGTERM
    """The signal that asks the server to shut down cleanly."""
    signal_whole_group: bool = True
    """Whether the stop signal goes to the server's children too."""

    def __init__(self, settings: Settings) -> None:
        """Set the data folder (``<data_dir>/<name>``) and the process handle; nothing starts.

        A subclass whose :attr:`name` depends on its arguments sets it before calling this, which
        names the data folder and the PID file after it and reads :meth:`marker`.
        """
        self.settings = settings
        self.data_dir = settings.data_dir.resolve() / self.name
        self.process = ManagedProcess(self.name, settings.data_dir.resolve() / "run", self.marker())

    @abstractmethod
    def marker(self) -> str:
        """A string in the server's command line that identifies our process."""

    @abstractmethod
    def address(self) -> str:
        """Where clients reach the server."""

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Refuse a start that :meth:`prepare` would refuse, before any server is started.

        Raises:
            ConfigurationError: the data folder cannot serve these settings.
        """

    @abstractmethod
    def prepare(self) -> None:
        """Create the data folder and whatever the first start needs; safe to call again."""

    @abstractmethod
    def launch(self) -> int:
        """Start the server process in the background and return its PID."""

    @abstractmethod
    def healthy(self) -> bool:
        """Whether the server answers a real request."""

    def child_env(self) -> dict[str, str]:
        """The environment of a child process of ours: this one plus the stack's settings.

        Without prometheus_client's multiprocess directories: importing Feast sets them to a
        temporary folder of its own (``feast.metrics``), which it deletes when that process
        exits. A child that inherited them (``featurestore run`` imports Feast to apply the
        definitions, starts the services and exits) then failed on the next metric it created,
        Feast's own included: every ExportTrainingDataset of a server started that way answered
        INTERNAL. Each of our processes serves its own metrics; none uses that mode.
        """
        env = {**os.environ, **settings_env(self.settings)}
        for name in _PROMETHEUS_MULTIPROCESS:
            env.pop(name, None)
        return env

    def after_healthy(self) -> None:  # noqa: B027 - optional hook
        """Run once the server is up (create databases, topics ...)."""

    def refresh(self, pid: int) -> None:  # noqa: B027 - optional hook
        """Bring the running server ``pid`` (found running by a start) up to these settings.

        A start that finds the server running launches nothing: a server whose files are
        generated from the settings and code (:meth:`prepare`) rewrites them here and reloads.
        """

    def stop(self) -> bool:
        """Stop the server if it runs; True if it did."""
        return self.process.stop(sig=self.stop_signal, whole_group=self.signal_whole_group)

    def not_serving(self) -> dict[str, str] | None:
        """The backends a running service waits for, with reasons (None: it says nothing)."""
        return None

    def status(self) -> ComponentStatus:
        """The current state, read from the PID file and a health check."""
        pid = self.process.pid()
        healthy = pid is not None and self.healthy()
        return ComponentStatus(
            name=self.name,
            running=pid is not None,
            healthy=healthy,
            pid=pid,
            address=self.address(),
            not_serving=None if healthy or pid is None else self.not_serving(),
        )


class NodeComponent(Component):
    """One of the local nodes of a server the stack can run several of (Kafka, Redis).

    Node 1 keeps the server's :attr:`name`; node n is ``<name>-<n>``, with a data folder, PID
    file, log and health check of its own.
    """

    def __init__(self, settings: Settings, node: int, nodes: int, nodes_said: str) -> None:
        """Node ``node`` (from 1) of the ``nodes`` local ones.

        A subclass whose :meth:`marker` reads more than :attr:`node` (a port) sets that first.

        Raises:
            ConfigurationError: the stack runs no node ``node``; ``nodes_said`` tells how many
                it runs, as the user would set it.
        """
        if not 1 <= node <= nodes:
            raise ConfigurationError(
                f"{self.name.capitalize()} node {node} does not exist: {nodes_said}"
            )
        self.node = node
        """This node's number, from 1."""
        if node > 1:
            self.name = f"{self.name}-{node}"
        super().__init__(settings)


def wait_healthy(component: Component) -> None:
    """Wait until a just launched component serves.

    Raises:
        BackendUnavailableError: it exited, or did not serve within its start timeout; the
            message carries the last lines of its log.
    """
    deadline = time.monotonic() + component.start_timeout
    while time.monotonic() < deadline:
        if component.healthy():
            return
        if component.process.exited_early():
            raise BackendUnavailableError(
                f"{component.name} exited during start; last lines of "
                f"{component.process.log_file}:\n{component.process.log_tail()}"
            )
        time.sleep(0.25)
    raise BackendUnavailableError(
        f"{component.name} did not become healthy within {component.start_timeout:.0f} s; "
        f"see {component.process.log_file}:\n{component.process.log_tail()}"
    )


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_binary(name: str, *candidates: Path) -> str:
    """The path of an executable, from the candidates first and then $PATH."""
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ConfigurationError(
            f"{name} is not installed; run `make setup` (deploy/bootstrap.sh) to install it"
        )
    return found


def write_ready_file(path: Path, **extra: object) -> None:
    """Say that this process serves: ``{"pid": ..., **extra}`` in ``path``.

    Services whose readiness no request can check (a stream processor, a scorer) write it once
    they run; :func:`ready_for` reads it back. One that waits for a backend writes it again
    with ``not_serving={backend: reason}``, and once more without when the backend is back
    (:func:`health_to_ready_file`). Written atomically: a reader sees the old or the new file.
    """
    write_atomically(path, json.dumps({"pid": os.getpid(), **extra}))


def health_to_ready_file(path: Path, **extra: object) -> Callable[[dict[str, str]], None]:
    """A :class:`featurestore.resilience.Health` listener that keeps ``path`` up to date."""

    def write(reasons: dict[str, str]) -> None:
        if reasons:
            write_ready_file(path, **extra, not_serving=reasons)
        else:
            write_ready_file(path, **extra)

    return write


def ready_for(path: Path, pid: int | None) -> bool:
    """Whether ``path`` says that the process ``pid`` is ready and waits for no backend."""
    ready = _ready(path, pid)
    return ready is not None and not ready.get("not_serving")


def not_serving_of(path: Path, pid: int | None) -> dict[str, str] | None:
    """The backends the process ``pid`` says (in ``path``) it waits for, with reasons."""
    ready = _ready(path, pid)
    reasons = None if ready is None else ready.get("not_serving")
    return {str(k): str(v) for k, v in reasons.items()} if isinstance(reasons, dict) else None


def _ready(path: Path, pid: int | None) -> dict[str, object] | None:
    if pid is None:
        return None
    try:
        ready = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return ready if isinstance(ready, dict) and ready.get("pid") == pid else None


def answers_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Whether ``GET url`` answers 200 (a server's health endpoint)."""
    try:
        return requests.get(url, timeout=timeout_s).status_code == 200
    except requests.RequestException:
        return False


class OwnProcess(Component):
    """A process of this project: ``python -m <module> <command words> <arguments>``.

    Recognised by its module and command words in its command line (:meth:`marker`), started
    with the stack's settings in its environment, with nothing to prepare but its data folder.
    """

    module: str = "featurestore.cli"
    command_words: tuple[str, ...] = ()
    """The command after the module: ``("serve",)``, ``("stack", "supervise")``."""

    @override
    def marker(self) -> str:
        """The module and the command words, as they stand in the command line."""
        return " ".join((self.module, *self.command_words))

    def arguments(self) -> list[str]:
        """The options after the command words (none unless a subclass says)."""
        return []

    def command(self) -> list[str]:
        """The command line of the background process."""
        return [sys.executable, "-m", self.module, *self.command_words, *self.arguments()]

    @override
    def prepare(self) -> None:
        """Create the data folder; the process needs nothing else before it starts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @override
    def launch(self) -> int:
        """Run :meth:`command` with the stack's settings in its environment."""
        return self.process.start(self.command(), env=self.child_env())


class ReadyFileComponent(OwnProcess):
    """A process no request can check: healthy once it writes its PID to :attr:`ready_file`.

    It is given the file as ``--ready-file``, after its other arguments.
    """

    @property
    def ready_file(self) -> Path:
        """Where the process writes ``{"pid": ...}`` once it serves (``--ready-file``)."""
        return self.data_dir / "ready.json"

    @override
    def prepare(self) -> None:
        """Create the data folder; remove the last run's ready file, which could pass for new."""
        super().prepare()
        self.ready_file.unlink(missing_ok=True)

    @override
    def command(self) -> list[str]:
        """The command line, with ``--ready-file`` last."""
        return [*super().command(), "--ready-file", str(self.ready_file)]

    @override
    def healthy(self) -> bool:
        """Whether the ready file names the running process and lists no backend it waits for."""
        return ready_for(self.ready_file, self.process.pid())

    @override
    def not_serving(self) -> dict[str, str] | None:
        """The backends the running process lists in its ready file, with reasons."""
        return not_serving_of(self.ready_file, self.process.pid())
