"""``featurestore predict``: the prediction feed (``--follow``) and its table (``--record``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from pathlib import Path

import click

from featurestore.cli._follow import follow_options
from featurestore.cli._follow import start_follower
from featurestore.cli._options import comma_list

__all__ = ["predict"]


def _horizon(value: str) -> tuple[str, timedelta]:
    name, sep, minutes = value.rpartition("=")
    if not sep or not name or not (minutes.isascii() and minutes.isdigit()) or int(minutes) == 0:
        raise click.BadParameter(f"{value!r}: expected MODEL=MINUTES, for example direction=15")
    return name, timedelta(minutes=int(minutes))


@click.command()
@click.option("--follow", is_flag=True, help="Predict each new feature row and publish it.")
@click.option(
    "--model", "model_names", multiple=True,
    help="A registered model whose alias version predicts (--follow; repeatable).",
)  # fmt: skip
@click.option("--alias", default="champion", show_default=True)
@comma_list("--symbols", help="Only these symbols, comma-separated (default: all).")
@click.option("--view", "view_name", default="rolling_1m", show_default=True,
              help="The view whose new rows are predicted.")  # fmt: skip
@click.option(
    "--record", is_flag=True,
    help="Also write every prediction of the predictions topic (Predict's and the feed's) to "
    "the offline 'predictions' table.",
)  # fmt: skip
@click.option(
    "--horizon", "horizons", multiple=True, metavar="MODEL=MINUTES",
    help="The horizon a model's outcomes are computed over (--record; default 5 minutes).",
)  # fmt: skip
@click.option(
    "--schema", default="public", show_default=True,
    help="The PostgreSQL schema of the predictions table and its view (--record).",
)  # fmt: skip
@follow_options("predict")
def predict(
    follow: bool,
    model_names: tuple[str, ...],
    alias: str,
    symbols: tuple[str, ...],
    view_name: str,
    record: bool,
    horizons: tuple[str, ...],
    schema: str,
    project: str | None,
    since_minutes: int,
    poll_seconds: float,
    ready_file: Path | None,
) -> None:
    """Publish live predictions of MODEL@ALIAS for new feature rows, and/or record them.

    --follow tails VIEW's offline table as the processors store rows and publishes one
    PredictionLog per row (id: model, version, symbol, feature event time) to the predictions
    topic, which StreamPredictions serves; a promotion is picked up within 5 s. --record
    upserts every prediction of that topic into the offline 'predictions' table (view
    predictions_with_outcomes: the forward return over each model's horizon). Stop with Ctrl-C.
    """
    if not follow and not record:
        raise click.UsageError("give --follow (with --model) and/or --record")
    if follow and not model_names:
        raise click.UsageError("--follow needs --model NAME")
    parsed_horizons = dict(_horizon(h) for h in horizons)

    from featurestore.events import ConfluentSchemaStore
    from featurestore.offline import PostgresOfflineStore
    from featurestore.offline.predictions import BarsTable
    from featurestore.offline.predictions import PredictionTable
    from featurestore.offline.predictions import record_predictions
    from featurestore.telemetry import process_telemetry
    from models.follow import follow_table
    from models.metrics import FeedMetrics
    from models.predictor import Predictor
    from models.publish import PredictionPublisher
    from models.registry import ModelRegistry

    follower = start_follower(project, ready_file)
    settings, definitions = follower.settings, follower.definitions
    telemetry = process_telemetry(settings, "predictor", settings.metrics.predictor_port)
    metrics = FeedMetrics(telemetry.meter_provider, "predictor")
    stop, health, retrier = follower.stop, follower.health, follower.retrier
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def run(target: Callable[[], None], name: str) -> None:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # ends the command: say why, stop the others
                errors.append(exc)
                stop.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        threads.append(thread)

    if record:
        table = PredictionTable(
            table=f"{schema}.predictions",
            view=f"{schema}.predictions_with_outcomes",
            bars=BarsTable.of_view(definitions.view("bars_1m")),
            horizons=parsed_horizons,
        )
        schemas = ConfluentSchemaStore.from_settings(settings.schema_registry)

        def recorder() -> None:
            record_predictions(
                settings.kafka.connection,
                schemas,
                settings.postgres.dsn,
                settings.topics.predictions,
                table,
                stop=stop,
                health=health,
                on_batch=lambda n, new: click.echo(f"recorded {new} new of {n} predictions"),
            )

        run(recorder, "prediction-recorder")
        click.echo(f"recording {settings.topics.predictions} into table {table.table}")

    predictors: list[Predictor] = []
    store: PostgresOfflineStore | None = None
    publisher: PredictionPublisher | None = None
    if follow:
        store = PostgresOfflineStore.from_settings(settings, definitions)
        registry = ModelRegistry(settings.mlflow.tracking_uri)
        publisher = retrier.call(lambda: PredictionPublisher.from_settings(settings), "start")
        wanted = list(symbols)
        view = definitions.view(view_name)
        since = datetime.now(UTC) - timedelta(minutes=since_minutes)
        for name in model_names:
            predictor = retrier.call(
                partial(
                    Predictor, registry, name,
                    alias=alias, store=store, symbols=wanted, row_view=view_name,
                ),
                "start",
            ).start()  # fmt: skip
            predictors.append(predictor)
            click.echo(f"predicting with {name} version {predictor.current.version} "
                       f"into {publisher.topic}")  # fmt: skip

            def version(predictor: Predictor = predictor) -> str:
                return str(predictor.current.version)

            metrics.add_model(name, version)

            def on_batch(
                rows: int, n: int, name: str = name, version: Callable[[], str] = version
            ) -> None:
                metrics.batch(rows, n, name)
                # The version in use now: a promotion shows in the next batch's line.
                click.echo(f"{name} version {version()}: predicted {n} of {rows} rows")

            def feed(
                predictor: Predictor = predictor, on_batch: Callable[..., None] = on_batch
            ) -> None:
                follow_table(
                    predictor, publisher, settings.postgres.dsn, view,
                    since=since, poll_s=poll_seconds, stop=stop, health=health,
                    on_batch=on_batch,
                )  # fmt: skip

            run(feed, f"prediction-feed-{name}")
    follower.announce_ready()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for thread in threads:
            thread.join(30)
        for predictor in predictors:
            predictor.close()
        if publisher is not None:
            publisher.close()
        if store is not None:
            store.close()
        telemetry.close()
    if errors:
        raise errors[0]
