"""The dashboard of ``make run``: ``featurestore dashboard`` as a managed background process."""

from __future__ import annotations

import sys

import requests
from typing_extensions import override

from featurestore.stack.base import Component

__all__ = ["DashboardService"]


class DashboardService(Component):
    """The live page; healthy once it has gathered its first snapshot (``/healthz``)."""

    name = "dashboard"
    start_timeout = 90.0
    """It reads the definitions first (kept beside the stack; Feast only after an apply), then
    every panel once."""

    @override
    def marker(self) -> str:
        """Recognise the process by ``featurestore.cli dashboard`` in its command line."""
        return "featurestore.cli dashboard"

    @override
    def address(self) -> str:
        """The page's URL."""
        return self.settings.dashboard.url

    @override
    def prepare(self) -> None:
        """Create the data folder; the dashboard needs nothing else before it starts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @override
    def launch(self) -> int:
        """Run ``featurestore dashboard`` with the stack's settings in its environment."""
        return self.process.start(
            [sys.executable, "-m", "featurestore.cli", "dashboard"], env=self.child_env()
        )

    @override
    def healthy(self) -> bool:
        """``GET /healthz`` answers 200: the first snapshot is gathered."""
        try:
            reply = requests.get(self.settings.dashboard.url + "healthz", timeout=2.0)
        except requests.RequestException:
            return False
        return reply.status_code == 200
