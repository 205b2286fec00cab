"""``featurestore score --follow``: score new rolling_1m rows and publish anomalies."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import click

from featurestore.config import load_settings

__all__ = ["score"]


@click.command()
@click.option("--follow", is_flag=True, required=True, help="Keep tailing the offline table.")
@click.option("--model", "model_name", default="featurestore-anomaly", show_default=True)
@click.option("--project", default=None, help="Feast project (default: featurestore).")
@click.option("--topic", default=None, help="Anomalies topic (default: settings.topics.anomalies).")
@click.option(
    "--since-minutes", default=0, show_default=True, type=click.IntRange(min=0),
    help="Also score rows created up to this many minutes ago.",
)  # fmt: skip
@click.option("--poll-seconds", default=2.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option(
    "--ready-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write {\"pid\": PID} here once scoring runs (how `make run` knows it is up).",
)  # fmt: skip
def score(
    follow: bool,
    model_name: str,
    project: str | None,
    topic: str | None,
    since_minutes: int,
    poll_seconds: float,
    ready_file: Path | None,
) -> None:
    """Score new rolling_1m rows with MODEL@champion and publish the anomalies.

    Tails the offline table as the processors store rows; a promotion is picked up within 5 s.
    Stop with Ctrl-C.
    """
    from featurestore.definitions import PROJECT, load_definitions
    from featurestore.offline import PostgresOfflineStore
    from featurestore.resilience import Health, Retrier
    from featurestore.stack.base import health_to_ready_file
    from featurestore.telemetry import process_telemetry
    from models.follow import follow_table
    from models.metrics import ScorerMetrics
    from models.publish import AnomalyPublisher
    from models.registry import ModelRegistry
    from models.scoring import AnomalyScorer

    settings = load_settings()
    stop = threading.Event()
    # NOT_SERVING with the reasons in the ready file while a backend is away.
    health = Health(health_to_ready_file(ready_file) if ready_file is not None else None)
    retrier = Retrier(health=health, stop=stop)
    definitions = retrier.call(lambda: load_definitions(settings, project or PROJECT), "start")
    store = PostgresOfflineStore(settings.postgres.dsn, definitions)
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    publisher = retrier.call(lambda: AnomalyPublisher.from_settings(settings, topic), "start")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    telemetry = process_telemetry(settings, "scorer", settings.metrics.scorer_port)
    loaded = retrier.call(lambda: AnomalyScorer(registry, model_name, store=store), "start")
    with loaded as scorer:
        metrics = ScorerMetrics(
            telemetry.meter_provider, model_name, lambda: scorer.current.ref.version
        )
        click.echo(f"scoring with {scorer.current.ref.uri} into {publisher.topic}")
        if ready_file is not None:
            health_to_ready_file(ready_file)(health.reasons())

        def on_batch(rows: int, found: int) -> None:
            metrics.batch(rows, found)
            click.echo(f"scored {rows} rows, {found} anomalies")

        try:
            follow_table(
                scorer,
                publisher,
                settings.postgres.dsn,
                definitions.view("rolling_1m"),
                since=datetime.now(UTC) - timedelta(minutes=since_minutes),
                poll_s=poll_seconds,
                stop=stop,
                on_batch=on_batch,
                health=health,
            )
        finally:
            telemetry.close()
