"""The feature processor of ``make run``: ``featurestore processors run`` in the background."""

from __future__ import annotations

import sys
from pathlib import Path

from featurestore.config import Settings
from featurestore.stack.base import Component, ready_for

__all__ = ["ProcessorService", "ready_file"]


def ready_file(settings: Settings, name: str) -> Path:
    """The file a processor writes once its streaming query runs: ``{"pid": ...}``."""
    return settings.data_dir.resolve() / "processors" / name / "ready.json"


class ProcessorService(Component):
    """One streaming processor; healthy once its query has started (it says so in a file).

    ``args`` are the ``featurestore processors run`` options (project, topic, Spark settings).
    """

    name = "processors"
    start_timeout = 180.0  # import Feast (~7 s) and start Spark (~10 s) on a busy 2-core box
    signal_whole_group = False
    """SIGTERM goes to the driver, which stops its query cleanly; Spark's JVM follows it."""

    def __init__(
        self, settings: Settings, processor: str = "features", args: tuple[str, ...] = ()
    ) -> None:
        self.processor = processor
        self.args = args
        if processor != "features":
            self.name = f"processors-{processor}"
        super().__init__(settings)

    def marker(self) -> str:
        return "featurestore.cli processors run"

    def address(self) -> str:
        return f"processor {self.processor} (status: featurestore processors status)"

    def prepare(self) -> None:
        ready_file(self.settings, self.processor).unlink(missing_ok=True)

    def command(self) -> list[str]:
        """The command line of the background process."""
        return [
            sys.executable, "-m", "featurestore.cli", "processors", "run",
            "--name", self.processor, *self.args,
        ]  # fmt: skip

    def launch(self) -> int:
        return self.process.start(self.command(), env=self.child_env())

    def healthy(self) -> bool:
        return ready_for(ready_file(self.settings, self.processor), self.process.pid())
