"""``python -m featurestore.stack.mlflow_app``: the stack's MLflow tracking server in one process.

``mlflow server`` is two Python processes: its CLI imports MLflow and the server (Flask, FastAPI,
SQLAlchemy, Alembic), checks the database, then starts ``uvicorn mlflow.server.fastapi_app:app``
as a child, which imports all of it again, and only waits for that child from then on. Each
start, and each restart by the supervisor, paid the import twice: 18 s of CPU each here at load
7, 99 s from exec to ``/health`` (``bench/RESULTS.md``, startup). The database check itself is
0.5 s on an existing database: no migration runs on a restart.

This does what that CLI does for the options the stack uses (a SQLite backend and registry,
artifacts served from a folder, one worker), in one process: the server's environment as
``mlflow server`` sets it (the names from ``mlflow.server.constants``), the backend stores
created or migrated before the port opens (so ``/health`` still means "ready"), then uvicorn
serving ``mlflow.server.fastapi_app:app`` in this process.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

# Before MLflow's server module: it adds its security middleware (allowed hosts, CORS) when it
# is imported under a server, which it tells by uvicorn being imported.
import uvicorn

__all__ = ["main", "server_environment"]


def server_environment(backend_store_uri: str, artifacts_destination: str) -> dict[str, str]:
    """The environment ``mlflow server`` gives its app process for these two options.

    Artifacts are served through the server; the model registry is in the backend store.
    """
    from mlflow.server import constants
    from mlflow.utils.server_cli_utils import resolve_default_artifact_root

    artifact_root = resolve_default_artifact_root(True, "", backend_store_uri)
    return {
        constants.BACKEND_STORE_URI_ENV_VAR: backend_store_uri,
        constants.REGISTRY_STORE_URI_ENV_VAR: backend_store_uri,
        constants.ARTIFACT_ROOT_ENV_VAR: artifact_root,
        constants.SERVE_ARTIFACTS_ENV_VAR: "true",
        constants.ARTIFACTS_DESTINATION_ENV_VAR: artifacts_destination,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Initialise the stores, then serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m featurestore.stack.mlflow_app")
    parser.add_argument("--backend-store-uri", required=True)
    parser.add_argument("--artifacts-destination", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)

    from mlflow.server import constants
    from mlflow.server.handlers import initialize_backend_stores

    store = args.backend_store_uri
    environment = server_environment(store, args.artifacts_destination)
    os.environ.update(environment)
    initialize_backend_stores(store, store, environment[constants.ARTIFACT_ROOT_ENV_VAR])
    uvicorn.run("mlflow.server.fastapi_app:app", host=args.host, port=args.port, workers=1)


if __name__ == "__main__":
    main()
