"""A small client of Prometheus' HTTP API: instant and range queries, and the alerts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from featurestore.errors import BackendUnavailableError

__all__ = ["PrometheusApi", "Sample", "Series"]


@dataclass(frozen=True)
class Sample:
    """One labelled value of an instant query."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One labelled series of a range query: ``[unix seconds, value]`` points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusApi:
    """Queries one Prometheus server (``settings.prometheus.url``)."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._session = requests.Session()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            reply = self._session.get(self.url + path, params=params, timeout=self._timeout_s)
            reply.raise_for_status()
            return reply.json()["data"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise BackendUnavailableError(f"Prometheus at {self.url}: {exc}") from exc

    def query(self, expr: str) -> list[Sample]:
        """The current values of ``expr`` (NaN values dropped)."""
        result = self._get("/api/v1/query", {"query": expr})["result"]
        samples = [Sample(r["metric"], float(r["value"][1])) for r in result]
        return [s for s in samples if s.value == s.value]

    def query_range(self, expr: str, minutes: int, step_s: float) -> list[Series]:
        """``expr`` over the last ``minutes``, one point every ``step_s``."""
        end = time.time()
        params = {"query": expr, "start": end - minutes * 60, "end": end, "step": step_s}
        result = self._get("/api/v1/query_range", params)["result"]
        return [
            Series(r["metric"], [(float(t), float(v)) for t, v in r["values"] if v != "NaN"])
            for r in result
        ]

    def firing_alerts(self) -> list[dict[str, str]]:
        """The alerts firing now: name, severity, summary and labels."""
        alerts = self._get("/api/v1/alerts")["alerts"]
        return [
            {
                "alert": a["labels"].get("alertname", ""),
                "severity": a["labels"].get("severity", ""),
                "summary": a.get("annotations", {}).get("summary", ""),
                "since": a.get("activeAt", ""),
            }
            for a in alerts
            if a.get("state") == "firing"
        ]

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()
