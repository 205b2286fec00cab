"""``make run``'s ``featurestore monitor`` (lag and drift gauges) as a background process."""

from __future__ import annotations

import sys
from pathlib import Path

from featurestore.stack.base import Component, ready_for

__all__ = ["MonitorService"]


class MonitorService(Component):
    """Measures the processors' lag and the models' input drift for Prometheus."""

    name = "monitor"
    start_timeout = 60.0

    def marker(self) -> str:
        return "featurestore.cli monitor"

    def address(self) -> str:
        m = self.settings.metrics
        return f"lag + drift gauges on http://{m.host}:{m.monitor_port}/metrics"

    @property
    def ready_file(self) -> Path:
        """Where the monitor writes its PID once it serves."""
        return self.data_dir / "ready.json"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)

    def launch(self) -> int:
        command = [
            sys.executable, "-m", "featurestore.cli", "monitor",
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        return self.process.start(command, env=self.child_env())

    def healthy(self) -> bool:
        return ready_for(self.ready_file, self.process.pid())
