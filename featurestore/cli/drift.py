"""``featurestore drift``: PSI of live features against a model's training set."""

from __future__ import annotations

import sys
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from featurestore.cli._options import AWARE_TIME
from featurestore.cli._options import FiniteFloat
from featurestore.cli._options import project_option
from featurestore.config import load_settings

if TYPE_CHECKING:
    from models.monitoring import DriftReport

__all__ = ["drift"]


@click.command()
@click.option(
    "--model", "model_names", multiple=True,
    help="A registered model (repeat for several; default: every model that has a version of"
    " --alias, as the monitor watches them).",
)  # fmt: skip
@click.option("--alias", default="champion", show_default=True)
@project_option
@click.option(
    "--window-minutes", default=60, show_default=True, type=click.IntRange(min=1),
    help="Live window: the last minutes of the offline table.",
)  # fmt: skip
@click.option(
    "--end", "until", type=AWARE_TIME,
    help="End of the live window (ISO 8601 with a UTC offset; default: newest row).",
)  # fmt: skip
@click.option("--threshold", default=0.2, show_default=True, type=FiniteFloat(min=0))
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 3 when an input drifted.")
@click.option(
    "--log-mlflow/--no-log-mlflow", default=True, show_default=True,
    help="Record the PSI values as metrics of a run in the featurestore-drift experiment.",
)  # fmt: skip
def drift(
    model_names: tuple[str, ...],
    alias: str,
    project: str | None,
    window_minutes: int,
    until: datetime | None,
    threshold: float,
    fail_on_drift: bool,
    log_mlflow: bool,
) -> None:
    """Print the population stability index of each model input, worst first.

    Without --model, every model that has a version of --alias is measured in turn; one that
    cannot be (no drift reference, a window too young) is said in one line and the others go
    on. A model named with --model that cannot be measured is an error.
    """
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.errors import FeatureStoreError
    from featurestore.offline import PostgresOfflineStore
    from models.monitoring import log_drift
    from models.monitoring import measure_drift
    from models.registry import ModelRegistry

    settings = load_settings()
    definitions = load_definitions(settings, project or PROJECT)
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    names = list(model_names) or registry.with_alias(alias)
    if not names:
        click.echo(f"no registered model has a version aliased {alias!r}")
    drifted = 0
    with PostgresOfflineStore.from_settings(settings, definitions) as store:
        for name in names:
            try:
                report = measure_drift(
                    store,
                    settings.postgres.dsn,
                    registry,
                    name,
                    alias=alias,
                    window=timedelta(minutes=window_minutes),
                    end=until,
                    threshold=threshold,
                )
            except FeatureStoreError as exc:
                if model_names:
                    raise
                click.echo(f"{name}: not measured: {exc}")
                continue
            _print(report, threshold)
            if log_mlflow:
                run_id = log_drift(registry, report, "featurestore-drift")
                click.echo(f"logged to MLflow run {run_id}")
            drifted += len(report.drifted)
    if drifted and fail_on_drift:
        click.echo(f"{drifted} input(s) drifted", err=True)
        sys.exit(3)


def _print(report: DriftReport, threshold: float) -> None:
    click.echo(
        f"{report.ref.name} version {report.ref.version}: {report.start:%Y-%m-%d %H:%M} to "
        f"{report.end:%Y-%m-%d %H:%M} UTC, {report.features[0].live_rows} live rows, "
        f"threshold {threshold}"
    )
    click.echo(f"{'input':<44} {'psi':>8} {'missing train':>14} {'missing live':>13}  status")
    for f in report.features:
        status = "DRIFT" if f.drifted else "ok"
        click.echo(
            f"{f.feature:<44} {f.psi:>8.4f} {f.missing_reference:>14.1%} {f.missing_live:>13.1%}"
            f"  {status}"
        )
