"""The registry's Prometheus metrics: requests by route and status, compatibility refusals.

An ASGI middleware around the application, recording through OpenTelemetry; the route is the
path template that matched (``/subjects/{subject}/versions``), never the raw path, so subjects
do not multiply the series.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import metrics
from starlette.routing import Match
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

__all__ = ["MetricsMiddleware"]

_REGISTER = ("POST", "/subjects/{subject}/versions")
_CONFLICT = 409
"""Confluent's status for a schema incompatible with the subject's earlier versions."""


class MetricsMiddleware:
    """Counts and times each HTTP request of ``app`` by route, method and status."""

    def __init__(self, app: ASGIApp, provider: metrics.MeterProvider) -> None:
        """Measure ``app``'s requests with instruments on ``provider``'s meter."""
        self.app = app
        meter = provider.get_meter("featurestore.schema_registry")
        self._requests = meter.create_counter(
            "featurestore.schema_registry.requests",
            description="HTTP requests by route, method and status",
        )
        self._duration = meter.create_histogram(
            "featurestore.schema_registry.request_duration",
            unit="s",
            description="Time to answer an HTTP request, by route and method",
            explicit_bucket_boundaries_advisory=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
        )
        self._refusals = meter.create_counter(
            "featurestore.schema_registry.compatibility_refusals",
            description="Schemas refused as incompatible with their subject (409)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting and timing it by route, method and status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_of(self.app, scope)
            method = str(scope["method"])
            labels = {"route": route, "method": method}
            self._requests.add(1, {**labels, "status": str(status[0])})
            self._duration.record(time.perf_counter() - started, labels)
            if status[0] == _CONFLICT and (method, route) == _REGISTER:
                self._refusals.add(1)


def _route_of(app: Any, scope: Scope) -> str:
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(route.path)
    return "unmatched"
