"""``make run``'s ``featurestore monitor`` (lag and drift gauges) as a background process."""

from __future__ import annotations

import sys

from typing_extensions import override

from featurestore.stack.base import ReadyFileComponent

__all__ = ["MonitorService"]


class MonitorService(ReadyFileComponent):
    """Measures the processors' lag and the models' input drift for Prometheus."""

    name = "monitor"
    start_timeout = 60.0

    @override
    def marker(self) -> str:
        """Recognise the process by ``featurestore.cli monitor``."""
        return "featurestore.cli monitor"

    @override
    def address(self) -> str:
        """Where Prometheus scrapes its gauges."""
        m = self.settings.metrics
        return f"lag + drift gauges on http://{m.host}:{m.monitor_port}/metrics"

    @override
    def launch(self) -> int:
        """Run ``featurestore monitor``, which writes :attr:`ready_file` once it serves."""
        command = [
            sys.executable, "-m", "featurestore.cli", "monitor",
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        return self.process.start(command, env=self.child_env())
