"""The live dashboard: market, models and pipeline panels, refreshed in place.

A small page of its own (``static/``) over a JSON endpoint served by Starlette, which the store
already uses; the gathering (:mod:`._market`, :mod:`._models`, :mod:`._pipeline`) reads only the
store's interfaces: the gRPC API through the Python SDK, the offline store, the model registry and
Prometheus' HTTP API. ``featurestore dashboard`` runs it; ``make run`` starts it as a service of
the stack (``featurestore/stack/dashboard.py``).
"""

from __future__ import annotations

from featurestore.dashboard._app import Dashboard
from featurestore.dashboard._app import build_dashboard
from featurestore.dashboard._app import create_app

__all__ = ["Dashboard", "build_dashboard", "create_app"]
