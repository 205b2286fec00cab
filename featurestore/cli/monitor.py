"""``featurestore monitor``: consumer lag and drift PSI as Prometheus gauges, on a schedule."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

__all__ = ["monitor"]


@click.command()
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port of /metrics (default: FEATURESTORE_METRICS__MONITOR_PORT; 0: a free one).",
)
@click.option(
    "--ready-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write {\"pid\": PID} here once it serves (how the stack knows it is up).",
)  # fmt: skip
@click.option(
    "--project", default=None, help="Feast project of the models' features (default: featurestore)."
)
def monitor(metrics_port: int | None, ready_file: Path | None, project: str | None) -> None:
    """Measure each processor's lag and each model's input drift until SIGTERM."""
    from featurestore.config import load_settings
    from featurestore.monitor import Monitor
    from featurestore.stack.base import write_ready_file
    from featurestore.telemetry import log_to_stderr
    from featurestore.telemetry import process_telemetry

    log_to_stderr()
    settings = load_settings()
    port = settings.metrics.monitor_port if metrics_port is None else metrics_port
    telemetry = process_telemetry(settings, "monitor", port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if ready_file is not None:
        write_ready_file(ready_file)
    try:
        Monitor(settings, telemetry.meter_provider, project).run(stop)
    finally:
        telemetry.close()
