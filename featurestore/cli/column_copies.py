"""``featurestore column-copies``: rebuild the offline tables' column copies that need it, once."""

from __future__ import annotations

from datetime import timedelta

import click

from featurestore.cli._options import project_option

__all__ = ["column_copies"]


@click.command("column-copies")
@project_option
@click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild every copy, exact or not (after rows were written by hand in SQL).",
)
def column_copies(project: str | None, rebuild: bool) -> None:
    """Rebuild the column copies that are missing, inexact or stale, and say what each holds.

    A copy holds a table's rows over an hour old, sorted for a merge; exports join their entity
    rows of that past from it while it is exact, and the rest in PostgreSQL. ``featurestore
    monitor`` runs this on a schedule (``FEATURESTORE_POSTGRES__COLUMN_COPY_INTERVAL_S``).
    """
    from featurestore.config import load_settings
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.errors import ConfigurationError
    from featurestore.offline.column_copy import column_copy_root
    from featurestore.offline.column_copy import refresh_copies

    settings = load_settings()
    root = column_copy_root(settings)
    if root is None:
        raise ConfigurationError(
            "column copies are off (FEATURESTORE_POSTGRES__COLUMN_COPIES=false)"
        )
    definitions = load_definitions(settings, project or PROJECT)
    built = refresh_copies(
        settings.postgres.dsn,
        definitions,
        root,
        max_rows=settings.postgres.column_copy_max_rows,
        rebuild=rebuild,
        quiet=timedelta(0),  # asked for now: built even while a backfill still writes the past
    )
    for meta in built:
        click.echo(f"{meta.view}: {meta.rows:,} rows before {meta.until} copied")
    click.echo(
        f"{len(built)} cop{'y' if len(built) == 1 else 'ies'} rebuilt under {root}; "
        "the others are exact and current"
    )
