"""``featurestore dashboard``: the live page of market, models and pipeline, until SIGTERM."""

from __future__ import annotations

import click

__all__ = ["dashboard"]


@click.command()
@click.option("--port", type=int, default=None, help="Port (default: settings.dashboard.port).")
@click.option(
    "--grpc-target", default=None,
    help="host:port of the gRPC API to read (default: settings.grpc host and port).",
)  # fmt: skip
@click.option(
    "--project", default=None, help="Feast project of the symbols (default: settings.dashboard)."
)
def dashboard(port: int | None, grpc_target: str | None, project: str | None) -> None:
    """Serve the dashboard on the loopback port; it refreshes itself every few seconds."""
    import uvicorn

    from featurestore.config import load_settings
    from featurestore.dashboard import build_dashboard
    from featurestore.dashboard import create_app
    from featurestore.telemetry import log_to_stderr

    log_to_stderr()
    settings = load_settings()
    overrides = {k: v for k, v in {"port": port, "project": project}.items() if v is not None}
    settings = settings.model_copy(
        update={"dashboard": settings.dashboard.model_copy(update=overrides)}
    )
    target = grpc_target or f"{settings.grpc.host}:{settings.grpc.port}"
    board = build_dashboard(settings, target)
    board.start()
    try:
        d = settings.dashboard
        click.echo(f"dashboard on {d.url} (gRPC {target}, Prometheus {settings.prometheus.url})")
        uvicorn.run(create_app(board), host=d.host, port=d.port, log_level="warning")
    finally:
        board.stop()
