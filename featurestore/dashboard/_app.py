"""The dashboard's server: one gatherer thread, a JSON snapshot, and the page that draws it.

A thread gathers every panel every ``refresh_s`` into one snapshot; ``GET /api/snapshot`` returns
the latest, so any number of open pages cost the store nothing more. The page
(``static/index.html``) asks for it every ``refresh_s`` and redraws without reloading. A panel
whose source fails shows the error in place of its data, and the others go on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

from featurestore.config import Settings

__all__ = ["Dashboard", "build_dashboard", "create_app", "json_ready"]

logger = logging.getLogger(__name__)


@dataclass
class Dashboard:
    """Gathers the panels on a thread of its own; :attr:`snapshot` is the latest result."""

    settings: Settings
    panels: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]
    """Panel name -> gatherer, called in order with the snapshot gathered so far."""
    close_sources: Callable[[], None] = lambda: None
    snapshot: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def gather_once(self) -> dict[str, Any]:
        """Gather every panel now; a panel that fails carries ``{"error": ...}``."""
        snapshot: dict[str, Any] = {"generated_at": datetime.now(UTC).isoformat()}
        for name, gather in self.panels.items():
            began = time.monotonic()
            try:
                snapshot[name] = json_ready(gather(snapshot))
            except Exception as exc:  # shown on the page; the other panels still fill
                logger.warning("%s panel: %s", name, exc)
                snapshot[name] = {"error": f"{type(exc).__name__}: {exc}"}
            snapshot[name]["gathered_s"] = round(time.monotonic() - began, 3)
        return snapshot

    def start(self) -> None:
        """Start gathering every ``refresh_s``."""
        self._thread = threading.Thread(target=self._run, name="dashboard-gather", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = self.settings.dashboard.refresh_s
        while not self._stop.is_set():
            began = time.monotonic()
            self.snapshot = self.gather_once()
            self._stop.wait(max(0.0, period - (time.monotonic() - began)))

    def stop(self) -> None:
        """Stop gathering and close the sources."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.close_sources()


def json_ready(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None: JSON has no such numbers.

    Panels carry them where the store does (an LSTM's score before its entity has the history
    it needs, a feature of a view not filled yet); the page shows None as a dash.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def _page(refresh_s: float) -> str:
    static = resources.files("featurestore.dashboard") / "static"
    html = (static / "index.html").read_text()
    return (
        html.replace("/*STYLE*/", (static / "dashboard.css").read_text())
        .replace("/*SCRIPT*/", (static / "dashboard.js").read_text())
        .replace("__REFRESH_MS__", str(int(refresh_s * 1000)))
    )


def create_app(dashboard: Dashboard) -> Starlette:
    """The page (``/``), its data (``/api/snapshot``) and a health check (``/healthz``)."""
    page = _page(dashboard.settings.dashboard.refresh_s)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def snapshot(request: Request) -> Response:
        return JSONResponse(dashboard.snapshot, headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        ready = bool(dashboard.snapshot)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/snapshot", snapshot),
            Route("/healthz", healthz),
        ]
    )


def build_dashboard(settings: Settings, grpc_target: str) -> Dashboard:
    """The dashboard of the store ``settings`` describe, reading the gRPC API at ``grpc_target``."""
    from featurestore_client import FeatureStoreClient

    from featurestore.dashboard._market import MarketPanel
    from featurestore.dashboard._models import ModelsPanel
    from featurestore.dashboard._pipeline import pipeline_panel
    from featurestore.dashboard._prometheus import PrometheusApi
    from featurestore.definitions.snapshot import cached_definitions
    from featurestore.offline import PostgresOfflineStore
    from models.registry import ModelRegistry

    d = settings.dashboard
    history = timedelta(minutes=d.history_minutes)
    step_s = max(d.refresh_s, settings.prometheus.scrape_interval_s)
    token = None if d.grpc_token is None else d.grpc_token.get_secret_value()
    client = FeatureStoreClient(grpc_target, timeout_s=10.0, token=token)
    offline = PostgresOfflineStore(settings.postgres.dsn, cached_definitions(settings, d.project))
    prometheus = PrometheusApi(settings.prometheus.url)
    market = MarketPanel(client, offline, history=history, max_symbols=d.max_symbols)
    models = ModelsPanel(
        client,
        ModelRegistry(settings.mlflow.tracking_uri),
        prometheus,
        models=d.models,
        horizon_s=d.outcome_horizon_s,
        drift_alert=settings.prometheus.drift_psi_alert,
    )

    def close() -> None:
        market.close()
        client.close()
        offline.close()
        prometheus.close()

    return Dashboard(
        settings,
        {
            "market": lambda _: market.gather(datetime.now(UTC)),
            "models": lambda s: models.gather(
                s["market"].get("symbols", []), d.history_minutes, step_s
            ),
            "pipeline": lambda _: pipeline_panel(
                prometheus, d.history_minutes, step_s, settings.prometheus.rate_window_s
            ),
        },
        close,
    )
