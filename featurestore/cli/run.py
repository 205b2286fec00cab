"""``featurestore run``: the main job of ``make run``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from featurestore.cli.stack import echo_progress, echo_status
from featurestore.config import Settings, load_settings

__all__ = ["run"]


@click.command()
@click.option(
    "--trades",
    "trade_files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Real trade files (or folders) to replay; the synthetic market when none is given.",
)
@click.option("--speed", type=float, default=None, help="Replay speed (x real time) for files.")
@click.option("--rate", type=float, default=200.0, show_default=True, help="Synthetic trades/s.")
@click.option("--symbols", type=int, default=20, show_default=True, help="Synthetic symbols.")
def run(trade_files: tuple[Path, ...], speed: float | None, rate: float, symbols: int) -> None:
    """Start the local stack and the services, feed them market data, and say where to look."""
    from featurestore.errors import FeatureStoreError
    from featurestore.stack import Stack
    from featurestore.stack.feed import FeedOptions

    settings = load_settings()
    options = FeedOptions(trade_files=trade_files, speed=speed, rate=rate, symbols=symbols)
    stack = Stack(settings, feed=options)
    try:
        servers = stack.up()
        _apply_definitions(settings)
        _ensure_first_models(settings)
        services = stack.start_services()
    except FeatureStoreError as exc:
        click.echo(f"make run failed: {exc}", err=True)
        sys.exit(1)
    echo_progress(
        servers.started + services.started,
        servers.already_running + services.already_running,
        servers.seconds + services.seconds,
    )
    echo_status(settings)
    processors = ", ".join(f"{p.processor} ({p.topic})" for p in stack.event_processors)
    feed = (
        " ".join(map(str, trade_files)) if trade_files else f"synthetic market, {rate:g} trades/s"
    )
    click.echo(
        f"\nfeed: {feed} -> topic {settings.topics.trades} "
        f"(invalid trades -> {settings.topics.dead_letter})\n"
        f"features: processors {processors} -> PostgreSQL + Redis "
        f"(featurestore processors status [--name NAME]; quotes and metrics: featurestore "
        f"ingest files *_Quote_Tick.csv.gz | ingest synthetic-metrics)\n"
        f"models: MLflow registry, alias champion; anomalies -> topic {settings.topics.anomalies}\n"
        f"serve: gRPC on {stack.grpc.address()} (health, reflection; clients/python SDK)\n"
        f"logs: {stack.feed.process.run_dir}/*.log\n"
        f"look: featurestore stack status | featurestore replay --help | "
        f"MLflow UI {settings.mlflow.tracking_uri}\n"
        "stop: make down"
    )


def _apply_definitions(settings: Settings) -> None:
    """Apply ``registry/`` (idempotent): the processors read the views from Feast's registry.

    Apply refuses a topic without a schema in the schema registry, and the feeds, whose first
    writes would register the event schemas, start later: register them first (the same call).
    """
    from featurestore.definitions import apply_repo
    from featurestore.ingest.kinds import register_event_schemas

    click.echo("registry: applying the feature definitions (featurestore registry apply) ...")
    register_event_schemas(settings)
    apply_repo(settings)


def _ensure_first_models(settings: Settings) -> None:
    """Train first models on demo data where none has a champion, so Predict and the scorer work."""
    from models.bootstrap import ensure_first_models

    click.echo("models: training first models where none has a champion ...")
    trained = ensure_first_models(settings)
    for report in trained:
        click.echo(f"models: {report.kind} trained in {report.seconds:.1f} s, now champion")
