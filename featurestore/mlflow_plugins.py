"""MLflow's REST client without Feast's header plugin: a call to MLflow must not import Feast.

Feast registers an ``mlflow.request_header_provider`` entry point
(``feast.infra.data_sources.mlflow.auth:FeastMLflowHeaderProvider``). MLflow loads every such
plugin when a process sends its first REST request (``mlflow.tracking.request_header.registry``
is imported then), and loading Feast's imports the whole ``feast`` package: 17 s of CPU here,
paid on the start path of every process that talks to MLflow (the scorer, the gRPC server's
first Predict, the monitor's drift, the dashboard). The provider adds a bearer token only
inside Feast's own ``mlflow_token_scope`` (Feast's MLflow data sources), which the store never
enters, so leaving it out changes no request.

MLflow has no setting to skip a plugin: :func:`skip_feast_header_provider` imports the registry
module while MLflow's entry point lookup leaves Feast's out, then puts the lookup back. Call it
before the first REST call; once the registry exists it does nothing (it is built once per
process).

MLflow's client telemetry is off in the store's processes unless ``MLFLOW_DISABLE_TELEMETRY``
says otherwise: importing this module sets it (to ``true``) where it is unset, so import it
before MLflow (:mod:`models._mlflow` does). At import MLflow starts a thread that fetches its
telemetry configuration from its makers; where that fails (nothing outside is reachable) the
thread deletes an environment variable (``_MLFLOW_TELEMETRY_SESSION_ID``), and a thread that
reads ``os.environ`` at that moment fails: in the suite an MLflow request failed with
``KeyError: '_MLFLOW_TELEMETRY_SESSION_ID'`` raised in urllib's proxy lookup.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from importlib.metadata import EntryPoint

__all__ = ["FEAST_PLUGIN_PREFIX", "skip_feast_header_provider"]

FEAST_PLUGIN_PREFIX = "feast."
"""Entry points whose object lives in a module under this are Feast's."""

_REGISTRY = "mlflow.tracking.request_header.registry"
_lock = threading.Lock()

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # read by MLflow's import: see above


def skip_feast_header_provider() -> None:
    """Build MLflow's request header providers now, from every plugin but Feast's."""
    with _lock:
        if _REGISTRY in sys.modules:
            return
        import mlflow.utils.plugins as plugins

        lookup = plugins.get_entry_points

        def without_feast(group: str) -> list[EntryPoint]:
            return [e for e in lookup(group) if not e.value.startswith(FEAST_PLUGIN_PREFIX)]

        plugins.get_entry_points = without_feast
        try:
            importlib.import_module(_REGISTRY)
        finally:
            plugins.get_entry_points = lookup
