"""Prometheus from the Debian package, as the stack's own instance on its own port.

Its configuration and rule files are generated from the settings at every start
(:mod:`.prometheus_config`), and by a start that finds it running, which then reloads it; its
samples are kept under ``.stack/prometheus/data``. ``featurestore
stack status`` shows the alerts that fire (:func:`firing_alerts`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import requests
from typing_extensions import override

from featurestore.config import Settings
from featurestore.stack.base import Component
from featurestore.stack.base import answers_ok
from featurestore.stack.base import require_binary
from featurestore.stack.prometheus_config import alert_rules
from featurestore.stack.prometheus_config import scrape_config
from featurestore.telemetry import prune_targets
from featurestore.telemetry import targets_dir

__all__ = ["Alert", "PrometheusServer", "firing_alerts"]


@dataclass(frozen=True)
class Alert:
    """An alert Prometheus reports as firing."""

    name: str
    labels: dict[str, str]
    summary: str


class PrometheusServer(Component):
    """Scrapes every process of the stack and evaluates the alert rules.

    ``instance`` names a second Prometheus of its own (its data, PID file and log apart), for
    tests that need other rule windows than the stack's.
    """

    name = "prometheus"

    def __init__(self, settings: Settings, instance: str | None = None) -> None:
        """The stack's Prometheus, or with ``instance`` a second one: ``prometheus-<instance>``."""
        if instance is not None:
            self.name = f"prometheus-{instance}"
        super().__init__(settings)

    @property
    def config_file(self) -> Path:
        """The generated ``prometheus.yml``."""
        return self.data_dir / "prometheus.yml"

    @property
    def rules_file(self) -> Path:
        """The generated alert rules."""
        return self.data_dir / "rules.yml"

    @override
    def marker(self) -> str:
        """Recognise the process by its ``--web.listen-address`` argument.

        The binary is shared; the listen address is this instance's own.
        """
        return (
            f"--web.listen-address={self.settings.prometheus.host}:{self.settings.prometheus.port}"
        )

    @override
    def address(self) -> str:
        """The HTTP API's base URL."""
        return self.settings.prometheus.url

    @override
    def prepare(self) -> None:
        """Write the configuration and alert rules from the settings; drop stale scrape targets."""
        targets = targets_dir(self.settings)
        targets.mkdir(parents=True, exist_ok=True)
        prune_targets(targets)
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self.rules_file.write_text(alert_rules(self.settings))
        self.config_file.write_text(scrape_config(self.settings, self.rules_file, targets))

    @override
    def refresh(self, pid: int) -> None:
        """Rewrite the configuration and rules; where they changed, reload them (SIGHUP).

        So that a ``stack up`` after an upgrade (a new alert, a changed threshold) takes effect
        without stopping Prometheus. Prometheus keeps its old configuration when the new one is
        invalid, and says so in its log.
        """
        before = [_read(self.rules_file), _read(self.config_file)]
        self.prepare()
        if [_read(self.rules_file), _read(self.config_file)] != before:
            with contextlib.suppress(ProcessLookupError):  # gone since: its next start reads them
                os.kill(pid, signal.SIGHUP)

    @override
    def launch(self) -> int:
        """Run ``prometheus`` on the generated configuration; its samples kept for ``retention``."""
        cfg = self.settings.prometheus
        return self.process.start(
            [
                require_binary("prometheus"),
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.data_dir / 'data'}",
                f"--storage.tsdb.retention.time={cfg.retention}",
                self.marker(),
                "--log.level=warn",
            ]
        )

    @override
    def healthy(self) -> bool:
        """``GET /-/ready`` answers 200."""
        return answers_ok(f"{self.address()}/-/ready")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def firing_alerts(settings: Settings, timeout_s: float = 2.0) -> list[Alert] | None:
    """The alerts firing now, or None when Prometheus does not answer."""
    try:
        reply = requests.get(f"{settings.prometheus.url}/api/v1/alerts", timeout=timeout_s)
        reply.raise_for_status()
        alerts = reply.json()["data"]["alerts"]
    except (requests.RequestException, ValueError, KeyError):
        return None
    return [
        Alert(
            name=str(a["labels"].get("alertname", "")),
            labels={k: str(v) for k, v in a["labels"].items() if k != "alertname"},
            summary=str(a.get("annotations", {}).get("summary", "")),
        )
        for a in alerts
        if a.get("state") == "firing"
    ]
