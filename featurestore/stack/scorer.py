"""The anomaly scorer of ``make run``: ``featurestore score --follow`` in the background."""

from __future__ import annotations

import sys
from pathlib import Path

from featurestore.stack.base import Component, ready_for

__all__ = ["AnomalyScorerService"]


class AnomalyScorerService(Component):
    """Scores new rolling_1m rows with the champion anomaly model into the anomalies topic.

    Healthy once the scorer has loaded its model and says so in its ready file; it needs a
    ``champion`` (``make run`` trains first models before it starts the services).
    """

    name = "scorer"
    start_timeout = 120.0

    def marker(self) -> str:
        return "featurestore.cli score"

    def address(self) -> str:
        return f"rolling_1m -> topic {self.settings.topics.anomalies}"

    @property
    def ready_file(self) -> Path:
        """Where the scorer writes its PID once it scores."""
        return self.data_dir / "ready.json"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)

    def launch(self) -> int:
        command = [
            sys.executable, "-m", "featurestore.cli", "score", "--follow",
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        return self.process.start(command, env=self.child_env())

    def healthy(self) -> bool:
        return ready_for(self.ready_file, self.process.pid())
