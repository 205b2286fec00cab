"""``featurestore anomalies``: fit a view's streaming detector; measure it on injected shapes."""

from __future__ import annotations

from datetime import datetime

import click

from featurestore.cli._options import AWARE_TIME
from featurestore.cli._options import project_option
from featurestore.config import load_settings

__all__ = ["anomalies"]


@click.group()
def anomalies() -> None:
    """Anomaly detection for any view: streaming detectors, one registered model per view."""


@anomalies.command()
@click.option("--view", required=True, help="The view whose rows are scored.")
@click.option(
    "--feature", "features", multiple=True, required=True,
    help="A feature of the view to watch (repeat for several; each its own series).",
)  # fmt: skip
@project_option
@click.option(
    "--start", type=AWARE_TIME, help="First row time to fit on (ISO 8601 with a UTC offset)."
)
@click.option(
    "--end", type=AWARE_TIME, help="Last row time to fit on (ISO 8601 with a UTC offset)."
)
@click.option("--model", "model_name", default=None, help="Default: featurestore-anomaly-VIEW.")
@click.option("--experiment", default="featurestore-anomalies", show_default=True)
@click.option(
    "--promote", type=click.Choice(["auto", "always", "never"]), default="auto",
    show_default=True, help="Move the champion alias: auto = only when the model has none yet.",
)  # fmt: skip
def train(
    view: str,
    features: tuple[str, ...],
    project: str | None,
    start: datetime | None,
    end: datetime | None,
    model_name: str | None,
    experiment: str,
    promote: str,
) -> None:
    """Fit the streaming detector of VIEW's FEATUREs on its stored rows and register it.

    No labels: the rows decide the step, the seasonal cycle (if any) and the level smoothing.
    """
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from models.anomaly.history import view_rows
    from models.registry import ModelRegistry
    from models.training.anomaly import fit_detector
    from models.training.anomaly import register_detector

    settings = load_settings()
    definitions = load_definitions(settings, project or PROJECT)
    feature_view = definitions.view(view)
    key = definitions.join_key(feature_view)
    for feature in features:
        feature_view.feature(feature)  # NotFoundError naming the view's features
    rows = view_rows(
        settings.postgres.dsn,
        feature_view,
        key,
        features,
        start=start,
        end=end,
    )
    if rows.empty:
        raise click.ClickException(f"no rows in {feature_view.source.table} to fit on")
    config, metrics = fit_detector(rows, feature_view, key, features)
    logged = register_detector(
        config,
        metrics,
        ModelRegistry(settings.mlflow.tracking_uri),
        model_name=model_name,
        experiment=experiment,
        promote=promote,
        tags={"data_source": f"{feature_view.source.table}: {len(rows)} rows"},
    )
    star = " (champion)" if logged.promoted else ""
    click.echo(f"{logged.ref.uri}{star}: view {view}, features {', '.join(features)}")
    params = config.params
    click.echo(
        f"  step {params.step_s:g} s, season {params.season or 'none'}, alpha {params.alpha:g}, "
        f"threshold {params.threshold:g}; flagged on its own rows: "
        f"{metrics['model.train.flagged_share']:.4f}"
    )


@anomalies.command()
@click.option("--series", default=40, show_default=True, type=click.IntRange(min=1))
@click.option("--steps", default=720, show_default=True, type=click.IntRange(min=400))
@click.option("--season", default=60, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
def evaluate(series: int, steps: int, season: int, seed: int) -> None:
    """Precision and recall of the detector on injected spikes, shifts, trends, season breaks."""
    from models.anomaly.detector import DetectorParams
    from models.anomaly.evaluation import evaluate_shapes
    from models.anomaly.evaluation import results_markdown

    results = evaluate_shapes(DetectorParams(season=season), series=series, steps=steps, seed=seed)
    click.echo(results_markdown(results))
