"""``featurestore cluster``: the standalone Spark cluster on loopback (a master and workers)."""

from __future__ import annotations

import sys

import click

from featurestore.cli._errors import os_error_line
from featurestore.config import load_settings

__all__ = ["cluster"]


@click.group()
def cluster() -> None:
    """Start, stop and show the local Spark cluster the processors can run on."""


@cluster.command()
def up() -> None:
    """Start the master and the workers (FEATURESTORE_SPARK_CLUSTER__*) not running."""
    from featurestore.stack.spark_cluster import SparkCluster

    settings = load_settings()
    started = SparkCluster(settings).up()
    click.echo(f"started: {', '.join(started)}" if started else "already up")
    click.echo(f"  master: {settings.spark_cluster.master_url}")
    click.echo(
        "  start a processor on it: featurestore processors start --name on-cluster --master "
        f"{settings.spark_cluster.master_url}"
    )


@cluster.command()
def down() -> None:
    """Stop the workers, then the master."""
    from featurestore.stack.spark_cluster import SparkCluster

    stopped = SparkCluster(load_settings()).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")


@cluster.command()
def status() -> None:
    """Each daemon: state, PID, address; exit status 3 when one is down."""
    from featurestore.stack.spark_cluster import SparkCluster

    statuses = SparkCluster(load_settings()).status()
    width = max(len(s.name) for s in statuses)
    for s in statuses:
        state = "healthy" if s.healthy else ("running, not healthy" if s.running else "stopped")
        pid = f"pid {s.pid}" if s.pid else ""
        click.echo(f"  {s.name:<{width}} {state:<22} {pid:<11} {s.address}")
    if not all(s.healthy for s in statuses):
        sys.exit(3)


@cluster.command()
@click.option(
    "--out", type=click.Path(file_okay=False), default=None,
    help="Folder for the archive (default: the data folder's spark/shipped).",
)  # fmt: skip
def pack(out: str | None) -> None:
    """Pack the executors' Python environment (spark.archives) and print its path.

    Point FEATURESTORE_SPARK_CLUSTER__ENVIRONMENT_ARCHIVE at it (or at a copy every node can
    read) with FEATURESTORE_SPARK_CLUSTER__SHIP_ENVIRONMENT=true.
    """
    from pathlib import Path

    from processors.spark.shipping import pack_environment

    settings = load_settings()
    folder = Path(out) if out else settings.data_dir.resolve() / "spark" / "shipped"
    try:
        archive = pack_environment(folder)
    except OSError as exc:
        if exc.filename is None:
            raise
        raise click.ClickException(
            f"cannot pack the environment into {folder}: {os_error_line(exc)}"
        ) from exc
    click.echo(str(archive))
