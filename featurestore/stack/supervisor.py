"""The local stack's supervisor: starts again, with backoff, every process of the stack that dies.

``featurestore stack up`` (and ``make run``) start it as one more background process with a PID
file and a log under ``.stack/run/``; ``stack down`` stops it before anything else, so nothing is
started again during a shutdown. In production the orchestrator's restart policy does this job
(see the README).

Every ``poll_interval_s`` it looks at each component's PID file. A component that is dead and
still *wanted* (started, and not stopped on purpose since: :mod:`featurestore.stack.process`)
is started again with the command it last ran, after the wait of :mod:`.restart`; one stopped
on purpose, or a feed that finished its file, is left alone. The check and the start happen
under the component's lock, which a stop takes to remove the wanted mark: a stop that races a
restart either comes first (nothing is started) or finds the new process and stops it.

The supervisor does not wait for a restarted process to become healthy: one that dies again
soon is simply one more quick death. What it knows (restarts, last exit, crash loop, next
start) is written to ``supervisor.json``, which ``featurestore stack status`` reads.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

import psutil
from typing_extensions import override

from featurestore.stack.base import Component
from featurestore.stack.base import OwnProcess
from featurestore.stack.base import ready_for
from featurestore.stack.restart import RestartPolicy
from featurestore.stack.restart import RestartRecord

__all__ = ["Supervisor", "SupervisorService", "read_records"]

logger = logging.getLogger(__name__)


class Supervisor:
    """Watches components and starts again those that die; one :meth:`tick` per look."""

    def __init__(
        self,
        components: Sequence[Component],
        policy: RestartPolicy,
        state_file: Path,
        *,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """Watch ``components``, start them again by ``policy``, keep the records in ``state_file``.

        ``clock`` and ``draw`` (a random number in ``[0, 1)`` for the jitter) are arguments so that
        tests set the time and the draw.
        """
        self.components = list(components)
        self.policy = policy
        self.state_file = state_file
        self.clock = clock
        self.draw = draw
        self.records: dict[str, RestartRecord] = {c.name: RestartRecord() for c in components}
        self._saved = False

    def run(self, stop: threading.Event, interval: float) -> None:
        """Look every ``interval`` seconds until ``stop`` is set."""
        logger.info("supervising %s", ", ".join(c.name for c in self.components))
        while not stop.is_set():
            self.tick()
            stop.wait(interval)
        logger.info("supervisor stopped")

    def tick(self) -> None:
        """Look at every component once, start again what is due, and save the records."""
        before = dict(self.records)
        for component in self.components:
            try:
                self.records[component.name] = self._watch(component)
            except Exception:  # one component's failure must never stop the supervision
                logger.exception("%s: supervision failed this round", component.name)
        if self.records != before or not self._saved:
            self._save()
            self._saved = True

    def _watch(self, component: Component) -> RestartRecord:
        record = self.records[component.name]
        now = self.clock()
        pid = component.process.pid()
        if pid is not None:
            if pid != record.pid:
                record = record.running(pid, _started_at(pid))
            return record.settle(self.policy, now)
        process = component.process
        if not process.wanted() or process.exit_status() == 0:
            return record.released()  # stopped on purpose, or a file replay that is done
        if record.next_start_at is None:
            record = record.died(self.policy, now, process.exit_reason(), self.draw())
            wait = (record.next_start_at or now) - now
            level = logging.ERROR if record.crash_loop else logging.WARNING
            loop = " - crash loop" if record.crash_loop else ""
            logger.log(
                level,
                "%s died (%s); starting it again in %.1f s (quick deaths in a row: %d%s)",
                component.name, record.last_exit, wait, record.quick_deaths, loop,
            )  # fmt: skip
        if now < (record.next_start_at or now):
            return record
        with process.exclusive():
            if process.pid() is not None or not process.wanted():
                return record.released()  # started by someone else, or stopped meanwhile
            try:
                component.prepare()
                new_pid = process.restart(component.child_env()) or component.launch()
            except Exception as exc:  # a start that fails is one more death, not our end
                logger.exception("%s: start failed", component.name)
                return record.died(self.policy, now, f"start failed: {exc}", self.draw())
        logger.info(
            "%s started again (pid %d, restart %d)", component.name, new_pid, record.restarts + 1
        )
        return record.restarted(new_pid, now)

    def _save(self) -> None:
        state = {
            "pid": os.getpid(),
            "components": {name: r.to_json() for name, r in self.records.items()},
        }
        temporary = self.state_file.with_name(f"{self.state_file.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.state_file)


def read_records(state_file: Path) -> dict[str, RestartRecord]:
    """The records a supervisor saved, by component name; empty when there are none."""
    try:
        state = json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    components = state.get("components", {})
    return {name: RestartRecord.from_json(data) for name, data in components.items()}


def _started_at(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


class SupervisorService(OwnProcess):
    """The supervisor as a background process: ``featurestore stack supervise``.

    Healthy once it has saved its first records (the state file names its PID).
    """

    name = "supervisor"
    command_words = ("stack", "supervise")
    start_timeout = 30.0

    @override
    def address(self) -> str:
        """What it does (with its backoff) and the file it keeps its records in."""
        cfg = self.settings.supervisor
        return (
            f"restarts what dies (backoff {cfg.initial_backoff_s:g}-{cfg.max_backoff_s:g} s), "
            f"{self.state_file.name}"
        )

    @property
    def state_file(self) -> Path:
        """Where the supervisor keeps its records: ``run/supervisor.json``."""
        return self.process.run_dir / "supervisor.json"

    @override
    def prepare(self) -> None:
        """Create the run folder, where its state file goes."""
        self.process.run_dir.mkdir(parents=True, exist_ok=True)

    @override
    def healthy(self) -> bool:
        """Its state file names the running process: it has saved its first records."""
        return ready_for(self.state_file, self.process.pid())
