"""The feature processors of ``make run``: ``featurestore processors run`` in the background.

One processor per event topic (:func:`event_processors`), each a process of its own (a Kafka
consumer, or a Spark application with ``FEATURESTORE_PROCESSORS__ENGINE=spark``) with its own
name (PID file, checkpoint folder, rows of the state table): a topic's views are computed by
the processor of that topic only, and a slow or failed one does not hold the others. Which
processors, by name and topic, :mod:`featurestore.topic_processors` says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from typing_extensions import override

from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.processor_files import processor_log
from featurestore.processor_files import ready_file
from featurestore.stack.base import OwnProcess
from featurestore.stack.base import not_serving_of
from featurestore.stack.base import ready_for
from featurestore.topic_processors import topic_processors

__all__ = ["ProcessorService", "event_processors", "start_processor"]


class ProcessorService(OwnProcess):
    """One streaming processor; healthy once its query has started (it says so in a file).

    ``args`` are the ``featurestore processors run`` options (project, topic, Spark settings).
    The processor called ``features`` is the component ``processors``; another, say
    ``features-quotes``, is ``processors-features-quotes``.
    """

    name = "processors"
    command_words = ("processors", "run")
    start_timeout = 180.0  # import Feast (~7 s) and start Spark (~10 s) on a busy 2-core box
    signal_whole_group = False
    """SIGTERM goes to the processor, which finishes its batch; Spark's JVM (if any) follows."""

    def __init__(
        self, settings: Settings, processor: str = "features", args: tuple[str, ...] = ()
    ) -> None:
        """Processor ``processor``, run with the ``featurestore processors run`` options ``args``.

        Any processor but ``features`` is the component ``processors-<processor>``.
        """
        self.processor = processor
        self.args = args
        if processor != "features":
            self.name = f"processors-{processor}"
        super().__init__(settings)

    @property
    def topic(self) -> str:
        """The topic it reads: its ``--topic`` argument, or the trades topic (the default)."""
        args = list(self.args)
        if "--topic" in args[:-1]:
            return args[args.index("--topic") + 1]
        return self.settings.topics.trades

    @override
    def address(self) -> str:
        """The topic it reads, and the command that shows its progress."""
        name = "" if self.processor == "features" else f" --name {self.processor}"
        return f"topic {self.topic} (featurestore processors status{name})"

    @override
    def prepare(self) -> None:
        """Remove the last run's ready file, which could pass for this one."""
        ready_file(self.settings, self.processor).unlink(missing_ok=True)

    @override
    def arguments(self) -> list[str]:
        """``--name`` and the ``featurestore processors run`` options it was given."""
        return ["--name", self.processor, *self.args]

    @override
    def healthy(self) -> bool:
        """Whether its ready file names the running process and lists no backend it waits for."""
        return ready_for(ready_file(self.settings, self.processor), self.process.pid())

    @override
    def not_serving(self) -> dict[str, str] | None:
        """The backends the running processor lists in its ready file, with reasons."""
        return not_serving_of(ready_file(self.settings, self.processor), self.process.pid())


def event_processors(settings: Settings) -> list[ProcessorService]:
    """The processors of ``make run``, one per event topic (:func:`topic_processors`).

    Each runs the engine ``FEATURESTORE_PROCESSORS__ENGINE`` names (``kafka`` by default) and
    serves ``/metrics`` on the next port from ``metrics.processors_port``.
    """
    port = settings.metrics.processors_port
    engine = settings.processors.engine
    return [
        ProcessorService(
            settings,
            name,
            ("--topic", topic, "--metrics-port", str(port + i), "--engine", engine),
        )
        for i, (name, topic) in enumerate(topic_processors(settings))
    ]


def start_processor(
    settings: Settings,
    name: str,
    project: str,
    topic: str,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``featurestore processors run`` as a one-off child, for tests and benchmarks.

    It runs as the background command it is in production: in its own session (stop it with
    :func:`featurestore.stack.process.stop_group`), its output appended to :func:`processor_log`.
    Unlike :class:`ProcessorService` it has no PID file and no supervisor: it ends with its parent.
    """
    command = [
        sys.executable, "-m", "featurestore.cli", "processors", "run", "--name", name,
        "--project", project, "--topic", topic, *args,
    ]  # fmt: skip
    log = processor_log(settings, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env={**os.environ, **settings_env(settings), **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
