"""``featurestore stack up|down|status``: the local servers, the services and their supervisor."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from featurestore.cli._options import comma_list
from featurestore.config import Settings
from featurestore.config import load_settings

if TYPE_CHECKING:
    from featurestore.stack import ComponentStatus
    from featurestore.stack import Stack
    from featurestore.stack import UpResult
    from featurestore.stack.feed import FeedOptions

__all__ = ["alert_lines", "bring_up", "echo_progress", "echo_status", "stack"]


def _names(only: tuple[str, ...]) -> list[str] | None:
    return list(only) or None


@click.group()
def stack() -> None:
    """Start, stop and inspect the local stack: servers, services and the supervisor."""


@stack.command()
@comma_list("--only", help="Components to start, comma-separated (default: all).")
@click.option(
    "--servers-only",
    is_flag=True,
    help="Start the servers (and the supervisor) but not the feed, gRPC, processors, scorer.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False),
    help="Append the names of the components this call started to this file.",
)
def up(only: tuple[str, ...], servers_only: bool, record: str | None) -> None:
    """Start what is not running, wait until it is healthy, and supervise it.

    By default: the servers, then the definitions and first models the services need, then the
    services (market feed, gRPC, processors, scorer), then the supervisor, which starts again
    whatever dies. ``--only`` starts the components named (and the supervisor).
    """
    from featurestore.errors import FeatureStoreError
    from featurestore.stack import Stack

    def remember(name: str) -> None:
        if record:
            with Path(record).open("a") as fh:
                fh.write(f"{name}\n")

    settings = load_settings()
    local = Stack(settings)
    names = _names(only)
    try:
        if names is not None:
            for name in names:
                local.component(name)  # an unknown name is an error, not a silent no-op
            servers = local.up([n for n in names if n in {c.name for c in local.servers}], remember)
            services = local.start_services(names, remember)
            result = _merged(servers, services, local.supervise(remember))
        elif servers_only:
            result = _merged(local.up(on_launch=remember), local.supervise(remember))
        else:
            result = bring_up(local, remember)
    except FeatureStoreError as exc:
        click.echo(f"stack up failed: {exc}", err=True)
        sys.exit(1)
    echo_progress(result.started, result.already_running, result.seconds)
    echo_status(settings)


def bring_up(local: Stack, on_launch: Callable[[str], None] | None = None) -> UpResult:
    """Start everything ``stack up`` and ``make run`` start, in order.

    The servers, then the definitions and first models the services need, then the services,
    then the supervisor.
    """
    servers = local.up(on_launch=on_launch)
    _apply_definitions(local.settings)
    local.follow_applied_topics()  # a topic of the user's views gets its processor too
    _ensure_first_models(local.settings, local.feed.options)
    services = local.start_services(on_launch=on_launch)
    return _merged(servers, services, local.supervise(on_launch))


def _merged(*results: UpResult) -> UpResult:
    from featurestore.stack import UpResult

    return UpResult(
        started=[name for r in results for name in r.started],
        already_running=[name for r in results for name in r.already_running],
        seconds=sum(r.seconds for r in results),
    )


def _apply_definitions(settings: Settings) -> None:
    """Apply ``registry/`` (idempotent): the processors read the views from Feast's registry.

    Apply refuses a topic without a schema in the schema registry, and the feeds, whose first
    writes would register the event schemas, start later: register them first (the same call).
    """
    from featurestore.apply import apply_repo
    from featurestore.definitions import PROJECT
    from featurestore.definitions.snapshot import cached_definitions
    from featurestore.ingest.kinds import register_event_schemas

    click.echo("registry: applying the feature definitions (featurestore registry apply) ...")
    register_event_schemas(settings)
    apply_repo(settings)
    # Kept beside the stack now, while Feast is imported here: the services started next read
    # them without importing Feast (17 s of CPU each here).
    cached_definitions(settings, PROJECT)


def _ensure_first_models(settings: Settings, feed: FeedOptions) -> None:
    """Train first models where none has a champion, so Predict and the scorer work.

    On the data fed so far when there is enough, otherwise on demo data drawn from the
    synthetic market ``feed`` sends (:mod:`models.bootstrap`).
    """
    from datetime import UTC

    from models._mlflow import held_back_output
    from models.bootstrap import ensure_first_models

    click.echo("models: training first models where none has a champion ...")
    mlflow_output = io.StringIO()
    try:
        with held_back_output(mlflow_output):
            trained = ensure_first_models(settings, market=feed.market(datetime.now(UTC)))
    except BaseException:
        click.echo(mlflow_output.getvalue(), err=True, nl=False)  # what MLflow said meanwhile
        raise
    for report in trained:
        click.echo(f"models: {report.kind} trained in {report.seconds:.1f} s, now champion")


@stack.command()
@comma_list("--only", help="Components to stop, comma-separated (default: all).")
@click.option(
    "--recorded",
    type=click.Path(dir_okay=False),
    help="Stop only the components named in this file (written by `up --record`), then delete it.",
)
def down(only: tuple[str, ...], recorded: str | None) -> None:
    """Stop the supervisor, then the servers and services this project started (by PID)."""
    from featurestore.stack import Stack

    local = Stack(load_settings())
    names = _names(only)
    if recorded:
        path = Path(recorded)
        # A name recorded under other settings (a node since removed) is nothing to stop.
        known = set(local.component_names)
        names = [n for n in path.read_text().split() if n in known] if path.exists() else []
        path.unlink(missing_ok=True)
    stopped = local.down(names)  # an unknown --only name is refused (ConfigurationError)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")


@stack.command()
def status() -> None:
    """Show each component: state, PID, address, and its restarts by the supervisor."""
    from featurestore.stack import Stack

    settings = load_settings()
    echo_status(settings)
    if not all(c.status().healthy for c in Stack(settings).servers):
        sys.exit(3)


@stack.command()
def check() -> None:
    """Connect to Kafka, Redis and PostgreSQL with the configured users, passwords and TLS.

    Says for each whether it let this client in, and if not why (a wrong password, a
    certificate that does not verify, a server away); exits 1 when one refused.
    """
    from featurestore.stack.security import check_access

    refused = False
    for backend, refusal in check_access(load_settings()).items():
        click.echo(f"{backend}: {'ok' if refusal is None else refusal}")
        refused = refused or refusal is not None
    if refused:
        sys.exit(1)


@stack.command(hidden=True)
def supervise() -> None:
    """Run the supervisor in the foreground until SIGTERM (``stack up`` runs it detached)."""
    import logging
    import signal
    import threading
    from types import FrameType

    from featurestore.stack import Stack
    from featurestore.stack.restart import RestartPolicy
    from featurestore.stack.supervisor import Supervisor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    local = Stack(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    policy = RestartPolicy.from_settings(settings.supervisor)
    supervisor = Supervisor(local.components, policy, local.supervisor.state_file)
    supervisor.run(stop, settings.supervisor.poll_interval_s)


def echo_progress(started: list[str], running: list[str], seconds: float) -> None:
    """Print what a start started and what it found already up."""
    if started:
        click.echo(f"started: {', '.join(started)} ({seconds:.1f} s)")
    if running:
        click.echo(f"already up: {', '.join(running)}")


def echo_status(settings: Settings) -> None:
    """Print each server and service of the stack: state, PID, address, restarts."""
    from featurestore.stack import Stack

    local = Stack(settings)
    statuses = local.status()
    others = local.others()
    width = max(len(name) for name in [*(s.name for s in statuses), *(p.name for p in others)])
    for s in statuses:
        state = "healthy" if s.healthy else ("running, not healthy" if s.running else "stopped")
        pid = f"pid {s.pid}" if s.pid else ""
        click.echo(f"  {s.name:<{width}} {state:<22} {pid:<11} {s.address}")
        for backend, reason in (s.not_serving or {}).items():
            click.echo(f"  {'':<{width}} NOT_SERVING: {backend} away: {reason}")
        restarts = restart_line(s, time.time())
        if restarts:
            click.echo(f"  {'':<{width}} {restarts}")
    if others:
        click.echo("  also running from this data folder (stack down stops them too):")
        for process in others:
            pid = f"pid {process.pid()}"
            click.echo(f"  {process.name:<{width}} {'running':<22} {pid:<11} {process.log_file}")
    click.echo(f"  data and logs under {settings.data_dir.resolve()}")
    for line in alert_lines(settings):
        click.echo(line)


def alert_lines(settings: Settings) -> list[str]:
    """What ``stack status`` says about the alerts Prometheus has firing."""
    from featurestore.stack.prometheus import firing_alerts

    alerts = firing_alerts(settings)
    if alerts is None:
        return [f"  alerts: Prometheus does not answer at {settings.prometheus.url}"]
    if not alerts:
        return ["  alerts: none firing"]
    lines = [f"  alerts firing ({len(alerts)}):"]
    for alert in alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "severity")
        severity = alert.labels.get("severity", "")
        lines.append(f"    {alert.name} [{severity}] {alert.summary or labels}")
    return lines


def restart_line(status: ComponentStatus, now: float) -> str | None:
    """What the supervisor did with a component, or None while it never died."""
    record = status.restart
    if record is None or record.last_exit is None:
        return None
    at = datetime.fromtimestamp(record.last_exit_at or now).strftime("%H:%M:%S")
    line = f"restarts {record.restarts}; last exit {at}: {record.last_exit}"
    if record.next_start_at is not None:
        line += f"; next start in {max(record.next_start_at - now, 0):.0f} s"
    if record.crash_loop:
        line = f"CRASH LOOP ({record.quick_deaths} quick deaths in a row); {line}"
    return line
