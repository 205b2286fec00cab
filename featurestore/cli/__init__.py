"""The ``featurestore`` command.

Each area of the store adds its own command group from its own module; heavy imports stay inside
the commands so that ``featurestore --help`` is fast.
"""

from __future__ import annotations

import os
from typing import Any

import click

from featurestore.cli._errors import os_error_line
from featurestore.cli.anomalies import anomalies
from featurestore.cli.cluster import cluster
from featurestore.cli.column_copies import column_copies
from featurestore.cli.dashboard import dashboard
from featurestore.cli.drift import drift
from featurestore.cli.export import export
from featurestore.cli.ingest import ingest
from featurestore.cli.monitor import monitor
from featurestore.cli.predict import predict
from featurestore.cli.processors import processors
from featurestore.cli.registry import registry
from featurestore.cli.replay import replay
from featurestore.cli.retention import retention
from featurestore.cli.run import run
from featurestore.cli.schema_registry import schema_registry
from featurestore.cli.score import score
from featurestore.cli.serve import serve
from featurestore.cli.stack import stack
from featurestore.cli.train import train
from featurestore.errors import FeatureStoreError

__all__ = ["main"]


class _Group(click.Group):
    """Turns expected failures into a one-line message and exit status 1, not a traceback.

    Expected are the store's own errors, and a file or folder the system refused (an
    :class:`OSError` naming its path: a folder that does not exist, no permission, a full disk).
    Anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeatureStoreError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            if exc.filename is None:
                raise
            raise click.ClickException(f"cannot use {os_error_line(exc)}") from exc


@click.group(cls=_Group)
@click.version_option(package_name="featurestore")
def main() -> None:
    """An event-sourced feature store for real-time ML on market data."""
    # MLflow's client retries a dead server for about four minutes by default; a command should
    # say "MLflow unreachable" in seconds. Explicit MLFLOW_* settings still win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # Its artifact downloads draw progress bars on stderr: noise between a command's own lines,
    # and in every service's log each time a model or a drift reference is loaded.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


main.add_command(stack)
main.add_command(cluster)
main.add_command(registry)
main.add_command(export)
main.add_command(retention)
main.add_command(column_copies)
main.add_command(run)
main.add_command(ingest)
main.add_command(replay)
main.add_command(schema_registry)
main.add_command(serve)
main.add_command(dashboard)
main.add_command(processors)
main.add_command(train)
main.add_command(drift)
main.add_command(score)
main.add_command(anomalies)
main.add_command(predict)
main.add_command(monitor)
