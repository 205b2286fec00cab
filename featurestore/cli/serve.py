"""``featurestore serve``: the gRPC service."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from featurestore.cli._options import project_option

__all__ = ["serve"]


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: settings.grpc.host).")
@click.option("--port", type=int, default=None, help="Port (default: settings.grpc.port).")
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A Feast repo (feature_store.yaml) to read definitions from instead of the registry "
    "the settings point at.",
)
@project_option
def serve(
    host: str | None, port: int | None, registry_path: Path | None, project: str | None
) -> None:
    """Serve the four services (with health and reflection) until SIGTERM, then drain."""
    from featurestore.config import load_settings
    from featurestore.definitions import PROJECT
    from featurestore.definitions import Definitions
    from featurestore.definitions.snapshot import KeptDefinitions
    from featurestore.definitions.snapshot import kept_definitions
    from featurestore.errors import NotFoundError
    from featurestore.online import catalog_from_feast_repo
    from featurestore.online.catalog import catalog_from_definitions
    from featurestore.service import run_server
    from featurestore.telemetry import log_to_stderr

    log_to_stderr()
    settings = load_settings()
    grpc_settings = settings.grpc.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    settings = settings.model_copy(update={"grpc": grpc_settings})
    if registry_path is not None:
        # Another Feast repo: its views may read any Feast source, not only the store's own
        # PostgreSQL tables, so its catalog comes from Feast's objects as they are, not from
        # the store's definitions (which refuse such sources). The one other way in, on purpose.
        run_server(settings, catalog_from_feast_repo(registry_path))
        return
    # The Feast registry the settings point at (no feature_store.yaml, no env substitution),
    # read through Feast only when it changed since the last start (a restart is seconds); the
    # server then follows it, serving what `registry apply` changes without a restart.
    name = project or PROJECT
    try:
        kept = kept_definitions(settings, name)
    except NotFoundError:
        # Nothing applied yet: serve an empty catalog (every feature NOT_FOUND) until the
        # first `registry apply`, which the server follows.
        logging.getLogger(__name__).warning(
            "Feast project %r has no definitions yet: serving none until `featurestore registry"
            " apply`",
            name,
        )
        kept = KeptDefinitions(Definitions(name, (), (), ()), None)
    run_server(settings, catalog_from_definitions(kept.definitions), kept)
