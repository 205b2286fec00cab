"""``featurestore score --follow``: score each new row of one or more views, publish anomalies."""

from __future__ import annotations

import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from pathlib import Path

import click

from featurestore.cli._follow import follow_options
from featurestore.cli._follow import start_follower

__all__ = ["parse_features", "score"]


def parse_features(values: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``VIEW=FEATURE[,FEATURE...]`` options as {view: features}; UsageError when malformed."""
    out: dict[str, tuple[str, ...]] = {}
    for value in values:
        view, sep, names = value.partition("=")
        features = tuple(n.strip() for n in names.split(",") if n.strip())
        if not sep or not view.strip() or not features:
            raise click.UsageError(f"--feature {value!r}: expected VIEW=FEATURE[,FEATURE...]")
        out[view.strip()] = out.get(view.strip(), ()) + features
    return out


@click.command()
@click.option("--follow", is_flag=True, required=True, help="Keep tailing the offline tables.")
@click.option(
    "--view", "views", multiple=True, default=("rolling_1m",), show_default=True,
    help="A view to score (repeat for several); each is scored by its own model.",
)  # fmt: skip
@click.option(
    "--model", "model_name", default=None,
    help="Registered model (one --view only; default: the view's, featurestore-anomaly[-VIEW]).",
)  # fmt: skip
@click.option(
    "--feature", "features", multiple=True, metavar="VIEW=FEATURE[,FEATURE]",
    help="Features a first detector of VIEW watches (with --register-missing).",
)  # fmt: skip
@click.option(
    "--register-missing", is_flag=True,
    help="Fit and register a streaming detector for a view whose model has no champion.",
)  # fmt: skip
@click.option("--topic", default=None, help="Anomalies topic (default: settings.topics.anomalies).")
@follow_options("score")
def score(
    follow: bool,
    views: tuple[str, ...],
    model_name: str | None,
    features: tuple[str, ...],
    register_missing: bool,
    project: str | None,
    topic: str | None,
    since_minutes: int,
    poll_seconds: float,
    ready_file: Path | None,
) -> None:
    """Score new rows of each VIEW with its anomaly model's champion; publish the anomalies.

    A view's model is ``featurestore-anomaly-VIEW`` (``rolling_1m``'s: ``featurestore-anomaly``):
    a streaming detector for any view (``featurestore anomalies train``), or rolling_1m's
    IsolationForest. Tails each view's offline table as the processors store rows; a promotion
    is picked up within 5 s. Stop with Ctrl-C.
    """
    views = tuple(dict.fromkeys(views))
    if model_name is not None and len(views) != 1:
        raise click.UsageError("--model names one view's model: give exactly one --view")
    wanted = parse_features(features)
    unknown = sorted(set(wanted) - set(views))
    if unknown:
        raise click.UsageError(f"--feature names views not scored: {', '.join(unknown)}")

    from featurestore.offline import PostgresOfflineStore
    from featurestore.telemetry import process_telemetry
    from models.anomaly.model import LEGACY_VIEW
    from models.anomaly.views import ViewScoring
    from models.anomaly.views import ensure_detector
    from models.anomaly.views import scoring_for_view
    from models.follow import follow_table
    from models.metrics import FeedMetrics
    from models.publish import AnomalyPublisher
    from models.registry import ModelRegistry

    follower = start_follower(project, ready_file)
    settings, definitions = follower.settings, follower.definitions
    stop, health, retrier = follower.stop, follower.health, follower.retrier
    for view in views:
        definitions.view(view)  # NotFoundError naming the known views
    dsn = settings.postgres.dsn
    store = PostgresOfflineStore.from_settings(settings, definitions)
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    if register_missing:
        for view in views:
            if view == LEGACY_VIEW and view not in wanted:
                continue  # its first model is the IsolationForest `make run` trains
            if view not in wanted:
                raise click.UsageError(f"--register-missing needs --feature {view}=FEATURE")
            ensure = partial(
                ensure_detector, definitions, registry, dsn, view, wanted[view],
                model_name=model_name,
            )  # fmt: skip
            logged = retrier.call(ensure, "start")
            if logged is not None:
                click.echo(f"registered {logged.ref.uri} for view {view} (champion)")
    scorings: list[ViewScoring] = []
    for view in views:
        make = partial(
            scoring_for_view, definitions, registry, dsn, store, view, model_name=model_name
        )
        scorings.append(retrier.call(make, "start"))
    telemetry = process_telemetry(settings, "scorer", settings.metrics.scorer_port)
    metrics = FeedMetrics(telemetry.meter_provider, "scorer")
    for scoring in scorings:
        metrics.add_model(scoring.model_name, scoring.version)
    since = datetime.now(UTC) - timedelta(minutes=since_minutes)
    threads = []
    publishers: list[AnomalyPublisher] = []
    try:
        for scoring in scorings:
            connect = partial(AnomalyPublisher.from_settings, settings, topic)
            publisher = retrier.call(connect, "start")
            publishers.append(publisher)
            scoring.scorer.start()
            click.echo(
                f"scoring with {scoring.scorer.current.ref.uri} (view {scoring.view.name}) "
                f"into {publisher.topic}"
            )

            def on_batch(rows: int, found: int, s: ViewScoring = scoring) -> None:
                metrics.batch(rows, found, s.model_name)
                click.echo(f"{s.view.name}: scored {rows} rows, {found} anomalies")

            thread = threading.Thread(
                target=follow_table,
                args=(scoring, publisher, dsn, scoring.view),
                kwargs={
                    "since": since,
                    "poll_s": poll_seconds,
                    "stop": stop,
                    "on_batch": on_batch,
                    "health": health,
                    "entity_key": scoring.entity_key,
                },
                name=f"score-{scoring.view.name}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        follower.announce_ready()
        while not stop.wait(1.0):
            if not all(t.is_alive() for t in threads):
                stop.set()
                raise click.ClickException("a view's scoring loop stopped; see the log above")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for publisher in publishers:
            publisher.close()
        for scoring in scorings:
            scoring.scorer.close()
        store.close()
        telemetry.close()
