"""``featurestore export``: a point-in-time correct training set to Parquet, labels optional."""

from __future__ import annotations

import re
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import click

from featurestore.cli._options import FiniteFloat
from featurestore.cli._options import comma_list
from featurestore.cli._options import project_option
from featurestore.config import load_settings

__all__ = ["export", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|min|h|d)\s*$")
_UNITS = {
    "us": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1.5h``, ``250ms``... as a timedelta; ValueError on anything else."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h or 250ms")
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Duration(click.ParamType[timedelta]):
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.option(
    "--entities",
    "entities_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),  # before any connection
    help="Entity rows (.parquet or .csv): symbol, event_timestamp, any extra columns.",
)
@click.option("--feature-service", help="Feature service to export (e.g. market_features_v1).")
@comma_list("--features", help="view:feature references, comma-separated (repeatable).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@project_option
@click.option("--timestamp-column", default="event_timestamp", show_default=True)
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option(
    "--label-horizon",
    type=_Duration(),
    default=None,
    help="Add labels over this horizon (e.g. 5m): from bars strictly after each row's time; "
    "null until a bar at or after time + horizon is in the store.",
)
@click.option(
    "--label-kind",
    type=click.Choice(["both", "return", "direction"]),
    default="both",
    show_default=True,
    help="forward_return, direction (-1/0/1), or both.",
)
@click.option(
    "--label-max-wait",
    type=_Duration(),
    default="1m",
    show_default=True,
    help="The entry bar must come this soon after t.",
)
@click.option(
    "--label-threshold",
    type=FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Returns within +-threshold are direction 0.",
)
@click.option(
    "--strict-timestamps",
    is_flag=True,
    help="Refuse timestamps without a timezone instead of taking them as UTC.",
)
@click.option(
    "--chunk-rows",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Entity rows per round trip to PostgreSQL (memory per chunk in flight).",
)
@click.option("--parallelism", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--engine",
    type=click.Choice(["postgres", "spark"]),
    default="postgres",
    show_default=True,
    help="Join in PostgreSQL (one file), or on Spark for sets beyond one server (--out is then "
    "a folder of Parquet files; no labels).",
)
@click.option(
    "--master",
    default="local[*]",
    show_default=True,
    help="Spark master (--engine spark): local[*] or spark://host:port.",
)
@click.option(
    "--read-partitions",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="--engine spark: slices of time each offline table is read in, in parallel over JDBC.",
)
def export(
    entities_path: Path,
    feature_service: str | None,
    features: tuple[str, ...],
    out: Path,
    project: str | None,
    timestamp_column: str,
    full_feature_names: bool,
    label_horizon: timedelta | None,
    label_kind: str,
    label_max_wait: timedelta,
    label_threshold: float,
    strict_timestamps: bool,
    chunk_rows: int,
    parallelism: int,
    engine: str,
    master: str,
    read_partitions: int,
) -> None:
    """Join entity rows with the features valid at their timestamps, into a Parquet file.

    Timestamps without a timezone (no offset) are taken to be UTC, with a warning, unless
    --strict-timestamps. Labels (--label-horizon) read only bars in (t, t + horizon]: the entry
    price is the first bar after t (within --label-max-wait), the exit price the last bar by
    t + horizon; both labels stay null until the store holds a bar of the symbol at or after
    t + horizon (see featurestore.offline.labels).
    """
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.errors import FeatureStoreError
    from featurestore.errors import ValidationError
    from featurestore.offline import LabelSpec
    from featurestore.offline import NaiveTimestampWarning
    from featurestore.offline import PostgresOfflineStore
    from featurestore.offline import TrainingRequest
    from featurestore.offline import export_parquet

    settings = load_settings()
    refs = list(features) or None
    try:
        labels = None
        if label_horizon is not None:
            labels = LabelSpec(
                horizon=label_horizon,
                max_wait=label_max_wait,
                threshold=label_threshold,
                kind=label_kind,
            )
        request = TrainingRequest(
            features=refs,
            feature_service=feature_service,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            allow_naive_timestamps=not strict_timestamps,
            labels=labels,
        )
        definitions = load_definitions(settings, project or PROJECT)
        if engine == "spark":
            from processors.spark.export import export_parquet_spark

            stats = export_parquet_spark(
                settings,
                definitions,
                entities_path,
                request,
                out,
                master=master,
                read_partitions=read_partitions,
            )
            click.echo(
                f"wrote {stats.rows} rows to {out} ({stats.batches} files) in "
                f"{stats.seconds:.2f} s ({stats.rows_per_second:,.0f} rows/s)"
            )
            return
        with (
            PostgresOfflineStore.from_settings(
                settings, definitions, chunk_rows=chunk_rows, parallelism=parallelism
            ) as store,
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always", NaiveTimestampWarning)
            stats = export_parquet(store, entities_path, request, out)
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
    except ValidationError as exc:
        where = f" ({exc.field})" if exc.field else ""
        click.echo(f"export failed{where}: {exc}", err=True)
        sys.exit(2)
    except FeatureStoreError as exc:
        click.echo(f"export failed: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"wrote {stats.rows} rows to {out} in {stats.seconds:.2f} s "
        f"({stats.rows_per_second:,.0f} rows/s)"
    )
