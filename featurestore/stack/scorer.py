"""The anomaly scorer of ``make run``: ``featurestore score --follow`` in the background."""

from __future__ import annotations

import sys

from featurestore.stack.base import ReadyFileComponent

__all__ = ["AnomalyScorerService"]


class AnomalyScorerService(ReadyFileComponent):
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

    def launch(self) -> int:
        command = [
            sys.executable, "-m", "featurestore.cli", "score", "--follow",
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        return self.process.start(command, env=self.child_env())
