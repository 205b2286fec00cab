"""The dashboard of ``make run``: ``featurestore dashboard`` as a managed background process."""

from __future__ import annotations

import sys

import requests

from featurestore.stack.base import Component

__all__ = ["DashboardService"]


class DashboardService(Component):
    """The live page; healthy once it has gathered its first snapshot (``/healthz``)."""

    name = "dashboard"
    start_timeout = 90.0
    """It reads the definitions first (kept beside the stack; Feast only after an apply), then
    every panel once."""

    def marker(self) -> str:
        return "featurestore.cli dashboard"

    def address(self) -> str:
        return self.settings.dashboard.url

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> int:
        return self.process.start(
            [sys.executable, "-m", "featurestore.cli", "dashboard"], env=self.child_env()
        )

    def healthy(self) -> bool:
        try:
            reply = requests.get(self.settings.dashboard.url + "healthz", timeout=2.0)
        except requests.RequestException:
            return False
        return reply.status_code == 200
