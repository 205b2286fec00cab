"""``make run``'s ``featurestore monitor`` (lag and drift gauges) as a background process."""

from __future__ import annotations

import sys

from featurestore.stack.base import ReadyFileComponent

__all__ = ["MonitorService"]


class MonitorService(ReadyFileComponent):
    """Measures the processors' lag and the models' input drift for Prometheus."""

    name = "monitor"
    start_timeout = 60.0

    def marker(self) -> str:
        return "featurestore.cli monitor"

    def address(self) -> str:
        m = self.settings.metrics
        return f"lag + drift gauges on http://{m.host}:{m.monitor_port}/metrics"

    def launch(self) -> int:
        command = [
            sys.executable, "-m", "featurestore.cli", "monitor",
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        return self.process.start(command, env=self.child_env())
