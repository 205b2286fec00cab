"""``featurestore export``: a point-in-time correct training set to Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from featurestore.config import load_settings

__all__ = ["export"]


@click.command()
@click.option(
    "--entities",
    "entities_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Entity rows (.parquet or .csv): symbol, event_timestamp, any extra columns.",
)
@click.option("--feature-service", help="Feature service to export (e.g. market_features_v1).")
@click.option("--features", help="Comma-separated view:feature references.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", default=None, help="Feast project (default: featurestore).")
@click.option("--timestamp-column", default="event_timestamp", show_default=True)
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option("--chunk-rows", default=100_000, show_default=True, type=click.IntRange(min=1))
@click.option("--parallelism", default=2, show_default=True, type=click.IntRange(min=1))
def export(
    entities_path: Path,
    feature_service: str | None,
    features: str | None,
    out: Path,
    project: str | None,
    timestamp_column: str,
    full_feature_names: bool,
    chunk_rows: int,
    parallelism: int,
) -> None:
    """Join entity rows with the features valid at their timestamps, into a Parquet file.

    Naive timestamps (no offset) are taken to be UTC, with a warning.
    """
    from featurestore.definitions import PROJECT, load_definitions
    from featurestore.errors import FeatureStoreError, ValidationError
    from featurestore.offline import PostgresOfflineStore, TrainingRequest, export_parquet

    settings = load_settings()
    refs = [f for f in features.split(",") if f.strip()] if features else None
    try:
        definitions = load_definitions(settings, project or PROJECT)
        store = PostgresOfflineStore(
            settings.postgres.dsn, definitions, chunk_rows=chunk_rows, parallelism=parallelism
        )
        request = TrainingRequest(
            features=refs,
            feature_service=feature_service,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
        )
        stats = export_parquet(store, entities_path, request, out)
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
