"""``featurestore retention``: drop the offline partitions past each view's retention, once."""

from __future__ import annotations

import click

from featurestore.cli._options import project_option

__all__ = ["retention"]


@click.command()
@project_option
@click.option("--dry-run", is_flag=True, help="Only list what would be dropped.")
def retention(project: str | None, dry_run: bool) -> None:
    """Drop the partitions of each view's offline table older than its retention.

    A view's retention is the ``retention`` tag of its PostgreSQLSource (e.g. ``30d``); views
    without one keep everything. The log keeps every event: a dropped range comes back with
    ``featurestore processors backfill``. ``featurestore monitor`` runs this on a schedule.
    """
    import psycopg

    from featurestore.config import load_settings
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.offline.retention import apply_retention
    from featurestore.offline.retention import describe

    settings = load_settings()
    definitions = load_definitions(settings, project or PROJECT)
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        dropped = apply_retention(conn, definitions.views, dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    for item in dropped:
        click.echo(f"{verb} {describe(item)}")
    kept = [v.name for v in definitions.views if v.source.retention is None]
    click.echo(
        f"{len(dropped)} partition(s) {verb}; without retention: {', '.join(kept) or 'none'}"
    )
