"""The dashboard of ``make run``: ``featurestore dashboard`` as a managed background process."""

from __future__ import annotations

from typing_extensions import override

from featurestore.stack.base import OwnProcess
from featurestore.stack.base import answers_ok

__all__ = ["DashboardService"]


class DashboardService(OwnProcess):
    """The live page; healthy once it has gathered its first snapshot (``/healthz``)."""

    name = "dashboard"
    command_words = ("dashboard",)
    start_timeout = 90.0
    """It reads the definitions first (kept beside the stack; Feast only after an apply), then
    every panel once."""

    @override
    def address(self) -> str:
        """The page's URL."""
        return self.settings.dashboard.url

    @override
    def healthy(self) -> bool:
        """``GET /healthz`` answers 200: the first snapshot is gathered."""
        return answers_ok(self.settings.dashboard.url + "healthz")
