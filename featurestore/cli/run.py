"""``featurestore run``: the main job of ``make run``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from featurestore.cli._options import FiniteFloat
from featurestore.cli.stack import bring_up
from featurestore.cli.stack import echo_progress
from featurestore.cli.stack import echo_status
from featurestore.config import load_settings

__all__ = ["run"]


@click.command()
@click.option(
    "--trades",
    "trade_files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Real trade files (or folders) to replay; the synthetic market when none is given.",
)
@click.option(
    "--speed",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Replay speed (x real time) for files.",
)
@click.option(
    "--rate",
    type=FiniteFloat(min=0, min_open=True),
    default=200.0,
    show_default=True,
    help="Synthetic trades/s.",
)
@click.option("--symbols", type=int, default=20, show_default=True, help="Synthetic symbols.")
@click.option(
    "--live",
    "live_symbols",
    default=None,
    help="Feed the vendor's live trades and quotes of these symbols (AAPL,MSFT) instead: "
    "featurestore ingest live, key in FEATURESTORE_VENDOR__API_KEY.",
)
@click.option(
    "--secure",
    is_flag=True,
    help="Start the stack secured (FEATURESTORE_SECURITY__ENABLED): Kafka SASL_SSL/SCRAM, Redis "
    "ACL + TLS, PostgreSQL TLS; certificates made under the data folder.",
)
def run(
    trade_files: tuple[Path, ...],
    speed: float | None,
    rate: float,
    symbols: int,
    live_symbols: str | None,
    secure: bool,
) -> None:
    """Start the local stack and the services, feed them market data, and say where to look."""
    from featurestore.errors import FeatureStoreError
    from featurestore.stack import Stack
    from featurestore.stack.feed import FeedOptions

    if secure:
        # Before the settings load: every child process inherits the secured settings.
        os.environ["FEATURESTORE_SECURITY__ENABLED"] = "true"
    settings = load_settings()
    live = tuple(s.strip().upper() for s in (live_symbols or "").split(",") if s.strip())
    options = FeedOptions(
        trade_files=trade_files, speed=speed, rate=rate, symbols=symbols, live_symbols=live
    )
    stack = Stack(settings, feed=options)
    try:
        result = bring_up(stack)
    except FeatureStoreError as exc:
        click.echo(f"make run failed: {exc}", err=True)
        sys.exit(1)
    echo_progress(result.started, result.already_running, result.seconds)
    echo_status(settings)
    processors = ", ".join(f"{p.processor} ({p.topic})" for p in stack.event_processors)
    feed = (
        " ".join(map(str, trade_files)) if trade_files else f"synthetic market, {rate:g} trades/s"
    )
    if live:
        feed = f"vendor live feed of {','.join(live)} ({settings.vendor.ws_url})"
    click.echo(
        f"\nfeed: {feed} -> topic {settings.topics.trades} "
        f"(invalid trades -> {settings.topics.dead_letter})\n"
        f"features: processors {processors} -> PostgreSQL + Redis "
        f"(featurestore processors status [--name NAME]; quotes and metrics: featurestore "
        f"ingest files *_Quote_Tick.csv.gz | ingest synthetic-metrics)\n"
        f"models: MLflow registry, alias champion; anomalies -> topic {settings.topics.anomalies}\n"
        f"serve: gRPC on {stack.grpc.address()} (health, reflection; clients/python SDK)\n"
        f"dashboard: {settings.dashboard.url} (market, models, pipeline; refreshes every "
        f"{settings.dashboard.refresh_s:g} s)\n"
        f"logs: {stack.feed.process.run_dir}/*.log\n"
        f"supervisor: starts again whatever dies, with backoff (restarts in stack status)\n"
        f"look: featurestore stack status | featurestore replay --help | "
        f"MLflow UI {settings.mlflow.tracking_uri}\n"
        "stop: make down"
    )
