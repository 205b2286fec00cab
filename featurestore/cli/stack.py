"""``featurestore stack up|down|status``: the local servers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from featurestore.config import Settings, load_settings

__all__ = ["echo_progress", "echo_status", "stack"]


def _names(only: str | None) -> list[str] | None:
    return [n.strip() for n in only.split(",") if n.strip()] if only else None


@click.group()
def stack() -> None:
    """Start, stop and inspect the local Kafka, PostgreSQL, Redis, registry and MLflow."""


@stack.command()
@click.option("--only", help="Comma-separated components to start (default: all).")
@click.option(
    "--record",
    type=click.Path(dir_okay=False),
    help="Append the names of the components this call started to this file.",
)
def up(only: str | None, record: str | None) -> None:
    """Start every server that is not running and wait until all are healthy."""
    from featurestore.errors import FeatureStoreError
    from featurestore.stack import Stack

    def remember(name: str) -> None:
        if record:
            with Path(record).open("a") as fh:
                fh.write(f"{name}\n")

    settings = load_settings()
    try:
        result = Stack(settings).up(_names(only), on_launch=remember)
    except FeatureStoreError as exc:
        click.echo(f"stack up failed: {exc}", err=True)
        sys.exit(1)
    echo_progress(result.started, result.already_running, result.seconds)
    echo_status(settings)


@stack.command()
@click.option("--only", help="Comma-separated components to stop (default: all).")
@click.option(
    "--recorded",
    type=click.Path(dir_okay=False),
    help="Stop only the components named in this file (written by `up --record`), then delete it.",
)
def down(only: str | None, recorded: str | None) -> None:
    """Stop the servers this project started (by PID)."""
    from featurestore.stack import Stack

    names = _names(only)
    if recorded:
        path = Path(recorded)
        names = path.read_text().split() if path.exists() else []
        path.unlink(missing_ok=True)
    stopped = Stack(load_settings()).down(names)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")


@stack.command()
def status() -> None:
    """Show each server, its PID, its address and whether it is healthy."""
    from featurestore.stack import Stack

    settings = load_settings()
    echo_status(settings)
    if not all(c.status().healthy for c in Stack(settings).servers):
        sys.exit(3)


def echo_progress(started: list[str], running: list[str], seconds: float) -> None:
    """Print what a start started and what it found already up."""
    if started:
        click.echo(f"started: {', '.join(started)} ({seconds:.1f} s)")
    if running:
        click.echo(f"already up: {', '.join(running)}")


def echo_status(settings: Settings) -> None:
    """Print each server and service of the stack: state, PID, address."""
    from featurestore.stack import Stack

    statuses = Stack(settings).status()
    width = max(len(s.name) for s in statuses)
    for s in statuses:
        state = "healthy" if s.healthy else ("running, not healthy" if s.running else "stopped")
        pid = f"pid {s.pid}" if s.pid else ""
        click.echo(f"  {s.name:<{width}} {state:<22} {pid:<11} {s.address}")
    click.echo(f"  data and logs under {settings.data_dir.resolve()}")
