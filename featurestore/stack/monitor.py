"""``make run``'s ``featurestore monitor`` (lag and drift gauges) as a background process."""

from __future__ import annotations

from typing_extensions import override

from featurestore.stack.base import ReadyFileComponent

__all__ = ["MonitorService"]


class MonitorService(ReadyFileComponent):
    """Measures the processors' lag and the models' input drift for Prometheus."""

    name = "monitor"
    command_words = ("monitor",)
    start_timeout = 60.0

    @override
    def address(self) -> str:
        """Where Prometheus scrapes its gauges."""
        m = self.settings.metrics
        return f"lag + drift gauges on http://{m.host}:{m.monitor_port}/metrics"
