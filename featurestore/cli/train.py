"""``featurestore train``: train models on point-in-time exports and register them in MLflow."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from pathlib import Path

import click

from featurestore.cli._options import AWARE_TIME
from featurestore.cli._options import comma_list
from featurestore.cli._options import project_option
from featurestore.config import load_settings

__all__ = ["train"]

_KINDS = ("anomaly", "direction", "regime", "lstm", "rf", "all")


@click.command()
@click.argument("kinds", nargs=-1, type=click.Choice(_KINDS))
@project_option
@click.option("--start", type=AWARE_TIME, help="First sample time (ISO 8601 with a UTC offset).")
@click.option("--end", type=AWARE_TIME, help="Last sample time (ISO 8601 with a UTC offset).")
@comma_list("--symbols", help="Symbols, comma-separated (default: all).")
@click.option("--horizon-minutes", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option(
    "--promote",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Move the champion alias: auto = only when the model has none yet.",
)
@click.option("--name-prefix", default="featurestore-", show_default=True)
@click.option("--experiment", default="featurestore-models", show_default=True)
@click.option("--shuffle-labels", is_flag=True, help="Leakage canary: labels permuted in time.")
@click.option(
    "--model",
    "models_",
    multiple=True,
    type=click.Choice(_KINDS),
    help="A kind to train (repeatable; the same as naming KINDS).",
)
@click.option(
    "--seq-len", default=30, show_default=True, type=click.IntRange(min=2), help="LSTM rows."
)
@click.option(
    "--epochs", default=20, show_default=True, type=click.IntRange(min=1), help="LSTM epochs."
)
@click.option(
    "--data-source",
    type=click.Choice(["store", "file"]),
    default="store",
    show_default=True,
    help="The offline store's point-in-time export, or a file of one (--data-file).",
)
@click.option(
    "--data-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Parquet or CSV of an export with labels (featurestore export --label-horizon 5m ...).",
)
def train(
    kinds: tuple[str, ...],
    project: str | None,
    start: datetime | None,
    end: datetime | None,
    symbols: tuple[str, ...],
    horizon_minutes: int,
    seed: int,
    promote: str,
    name_prefix: str,
    experiment: str,
    shuffle_labels: bool,
    models_: tuple[str, ...],
    seq_len: int,
    epochs: int,
    data_source: str,
    data_file: Path | None,
) -> None:
    """Train KINDS (anomaly, direction, regime, lstm, rf; default all) and register them.

    Features come from the offline store's point-in-time export of each kind's feature service;
    the split is chronological (60/20/20) with a purge gap of the labels' reach. Prints each
    model's test metrics next to its baselines.
    """
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.offline import LabelSpec
    from models.data import DataWindow
    from models.training.run import TrainingContext
    from models.training.run import TrainOptions
    from models.training.run import train as run_training

    if (data_source == "file") != (data_file is not None):
        raise click.BadParameter("--data-source file goes with --data-file PATH, and only it")
    chosen = [*kinds, *models_] or ["all"]
    if "all" in chosen:
        chosen = ["anomaly", "direction", "regime", "rf", "lstm"]
    settings = load_settings()
    definitions = load_definitions(settings, project or PROJECT)
    window = DataWindow(
        start,
        end,
        tuple(s.upper() for s in symbols) or None,
    )
    options = TrainOptions(
        window=window,
        labels=LabelSpec(horizon=timedelta(minutes=horizon_minutes)),
        seed=seed,
        shuffle_labels=shuffle_labels,
        name_prefix=name_prefix,
        experiment=experiment,
        promote=promote,  # type: ignore[arg-type]
        epochs=epochs,
        seq_len=seq_len,
        data_file=data_file,
    )
    context = TrainingContext.from_settings(settings, definitions)
    with context.store:  # leaving closes its connections
        reports = run_training(list(dict.fromkeys(chosen)), context, options)
    for report in reports:
        ref = report.logged.ref
        star = " (champion)" if report.logged.promoted else ""
        click.echo(f"{ref.name} version {ref.version}{star} in {report.seconds:.1f} s")
        for name in sorted(report.metrics):
            if ".test." in name and name.rsplit(".", 1)[1] in _SHOWN:
                click.echo(f"  {name:<48} {report.metrics[name]:.4f}")


_SHOWN = {
    "auc",
    "accuracy",
    "log_loss",
    "precision",
    "event_recall",
    "flagged_share",
    "rmse",
    "mae",
    "r2",
}
