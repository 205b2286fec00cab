"""What the commands that tail offline tables share (``predict --follow``, ``score --follow``).

Both run until SIGTERM/SIGINT, wait for their backends at start (:class:`Retrier`), report
NOT_SERVING with the reasons in their ready file while a backend is away, and take their
definitions through Feast only when the registry changed since the last start.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from featurestore.cli._options import FiniteFloat
from featurestore.cli._options import option_group
from featurestore.cli._options import project_option
from featurestore.config import Settings
from featurestore.config import load_settings

if TYPE_CHECKING:
    from featurestore.definitions import Definitions
    from featurestore.resilience import Health
    from featurestore.resilience import Retrier

__all__ = ["Follower", "follow_options", "start_follower"]


def follow_options(what: str) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """--project, --since-minutes, --poll-seconds, --ready-file; ``what`` rows: "score"."""
    return option_group(
        project_option,
        click.option(
            "--since-minutes",
            default=0,
            show_default=True,
            type=click.IntRange(min=0),
            help=f"Also {what} rows created up to this many minutes ago.",
        ),
        click.option("--poll-seconds", default=2.0, show_default=True, type=FiniteFloat(min=0.1)),
        click.option(
            "--ready-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help='Write {"pid": PID} here once running (how `make run` knows it is up).',
        ),
    )


@dataclass(frozen=True)
class Follower:
    """A started follower's settings, stop event, health, start-up retrier and definitions."""

    settings: Settings
    stop: threading.Event
    """Set by SIGTERM/SIGINT."""
    health: Health
    retrier: Retrier
    definitions: Definitions
    ready_file: Path | None

    def announce_ready(self) -> None:
        """Write the ready file (with the reasons a backend is away, if any)."""
        from featurestore.stack.base import health_to_ready_file

        if self.ready_file is not None:
            health_to_ready_file(self.ready_file)(self.health.reasons())


def start_follower(project: str | None, ready_file: Path | None) -> Follower:
    """Load the settings and definitions (waiting for the registry), stop on SIGTERM/SIGINT."""
    from featurestore.definitions import PROJECT
    from featurestore.definitions.snapshot import cached_definitions
    from featurestore.resilience import Health
    from featurestore.resilience import Retrier
    from featurestore.resilience import Stopped
    from featurestore.stack.base import health_to_ready_file

    settings = load_settings()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Before the wait for the registry: a stop while it is away ends the command cleanly.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    health = Health(health_to_ready_file(ready_file) if ready_file is not None else None)
    retrier = Retrier(health=health, stop=stop)
    try:
        definitions = retrier.call(
            lambda: cached_definitions(settings, project or PROJECT), "start"
        )
    except Stopped as stopped:
        click.echo(str(stopped), err=True)
        raise click.exceptions.Exit(0) from stopped
    return Follower(settings, stop, health, retrier, definitions, ready_file)
