"""``featurestore processors start|stop|status|backfill``: the feature processors."""

from __future__ import annotations

import faulthandler
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

import click

from featurestore.cli._options import AWARE_TIME
from featurestore.cli._options import FiniteFloat
from featurestore.cli._options import comma_list
from featurestore.cli._options import option_group
from featurestore.cli._options import project_option

if TYPE_CHECKING:
    from featurestore.stack.processors import ProcessorService

__all__ = ["await_start", "processors"]


_topic = click.option(
    "--topic", default=None, help="Event topic to read (default: the trades topic)."
)

_job_options = option_group(
    project_option,
    _topic,
    click.option("--master", default="local[*]", show_default=True, help="Spark master."),
    click.option(
        "--step-on",
        type=click.Choice(["auto", "driver", "executors"]),
        default="auto",
        show_default=True,
        help="Where each partition's step runs: Spark's executor tasks, or the driver's "
        "threads (auto: executors on a cluster, the driver in local mode).",
    ),
)

_stream_options = option_group(
    click.option(
        "--engine",
        type=click.Choice(["spark", "kafka"]),
        default=None,
        help="What reads the topic: Spark's micro-batches, or a Kafka consumer in this "
        "process (default: FEATURESTORE_PROCESSORS__ENGINE; spark with --master spark://...).",
    ),
    click.option(
        "--poll-ms",
        type=FiniteFloat(min=0),
        default=None,
        help="Kafka engine: how long a poll waits for records (default: "
        "FEATURESTORE_PROCESSORS__POLL_MS).",
    ),
    click.option(
        "--commit-ms",
        type=int,
        default=None,
        help="Kafka engine: how often rows and state are committed to PostgreSQL; Redis "
        "is written after every batch (default: FEATURESTORE_PROCESSORS__COMMIT_MS; 0: "
        "after every batch).",
    ),
    click.option(
        "--trigger-ms",
        type=int,
        default=0,
        show_default=True,
        help="Micro-batch interval (0: next batch as soon as the last ends).",
    ),
    click.option(
        "--max-offsets",
        type=int,
        default=200_000,
        show_default=True,
        help="Records per micro-batch at most.",
    ),
    comma_list(
        "--partitions",
        help="Partitions of the topic this application processes, comma-separated (default: "
        "all); split a topic across applications with disjoint sets.",
    ),
    click.option(
        "--starting-offsets",
        default="earliest",
        show_default=True,
        help="Where partitions without stored state start: earliest, latest or JSON offsets.",
    ),
)


_name = click.option(
    "--name", default="features", show_default=True, help="Processor name (checkpoint folder)."
)


def _options(name: str, settings: Any = None, **kwargs: Any) -> Any:
    """The run's options; ``settings`` give the engine's defaults (None: Spark's)."""
    from featurestore.definitions import PROJECT
    from processors.options import Engine
    from processors.options import ProcessorOptions

    master = kwargs.get("master") or "local[*]"
    engine: Engine | None = kwargs.get("engine")
    if engine is None:
        on_cluster = not master.startswith("local") or kwargs.get("step_on") == "executors"
        engine = "spark" if settings is None or on_cluster else settings.processors.engine
    poll_ms = kwargs.get("poll_ms")
    if poll_ms is None:
        poll_ms = 5.0 if settings is None else settings.processors.poll_ms
    commit_ms = kwargs.get("commit_ms")
    if commit_ms is None:
        commit_ms = 1000 if settings is None else settings.processors.commit_ms
    return ProcessorOptions(
        name=name,
        project=kwargs.get("project") or PROJECT,
        topic=kwargs.get("topic"),
        master=master,
        engine=engine,
        poll_ms=poll_ms,
        commit_ms=commit_ms,
        on_executors={"driver": False, "executors": True}.get(kwargs.get("step_on") or "auto"),
        trigger_ms=kwargs.get("trigger_ms", 0),
        max_offsets_per_trigger=kwargs.get("max_offsets") or None,
        starting_offsets=kwargs.get("starting_offsets", "earliest"),
        partitions=_partitions(kwargs.get("partitions")),
    )


def _partitions(given: tuple[str, ...] | None) -> tuple[int, ...] | None:
    from featurestore.errors import ConfigurationError

    if not given:
        return None
    try:
        return tuple(int(part) for part in given)
    except ValueError:
        raise ConfigurationError(
            f"--partitions {','.join(given)!r}: give numbers such as 0,1"
        ) from None


def _argv(kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The ``run`` options that reproduce ``kwargs`` in a background process."""
    argv: list[str] = []
    for key, value in kwargs.items():
        if value is None or key == "foreground":
            continue
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return tuple(argv)


@click.group()
def processors() -> None:
    """Run the processors that turn events into features (PostgreSQL + Redis)."""


_metrics_port = click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port of /metrics (default: FEATURESTORE_METRICS__PROCESSORS_PORT for the processor "
    "named features, a free one registered for Prometheus for others).",
)


@processors.command("run", hidden=True)
@_name
@_job_options
@_stream_options
@_metrics_port
def run_command(name: str, **kwargs: Any) -> None:
    """Run the streaming processor in this process until SIGTERM/SIGINT."""
    _run_foreground(name, kwargs)


def _run_foreground(name: str, kwargs: dict[str, Any]) -> None:
    from featurestore.config import load_settings
    from featurestore.processor_files import ready_file
    from featurestore.resilience import Health
    from featurestore.stack.base import health_to_ready_file
    from featurestore.telemetry import log_to_stderr
    from featurestore.telemetry import process_telemetry
    from processors.metrics import ProcessorMetrics
    from processors.resilient import run_resilient_stream

    log_to_stderr()
    logging.getLogger("py4j").setLevel(logging.WARNING)
    settings = load_settings()
    options = _options(name, settings, **kwargs)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # `kill -USR1 <pid>`: every thread's stack into the log, for a processor that seems stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    port = kwargs.get("metrics_port")
    if port is None:
        port = settings.metrics.processors_port if name == "features" else 0
    topic = options.topic_of(settings)
    telemetry = process_telemetry(settings, "processors", port, {"processor": name})
    metrics = ProcessorMetrics(telemetry.meter_provider, name, topic)
    ready = ready_file(settings, name)
    ready.unlink(missing_ok=True)
    # NOT_SERVING with the reasons while a backend is away, in the ready file.
    health = Health(health_to_ready_file(ready, topic=topic))

    def started() -> None:
        health.up()
        health_to_ready_file(ready, topic=topic)(health.reasons())
        click.echo(
            f"processor {name}: reading {topic} with the {options.engine} engine "
            "(stop with SIGTERM)"
        )

    try:
        run_resilient_stream(
            settings, options, stop, health=health, metrics=metrics, on_started=started
        )
    finally:
        ready.unlink(missing_ok=True)
        telemetry.close()
    click.echo(f"processor {name}: stopped")


@processors.command()
@_name
@_job_options
@_stream_options
@_metrics_port
@click.option("--foreground", is_flag=True, help="Run in this terminal instead of the background.")
def start(name: str, foreground: bool, **kwargs: Any) -> None:
    """Start the streaming processor (in the background, with a PID file)."""
    if foreground:
        _run_foreground(name, kwargs)
        return
    from featurestore.config import load_settings
    from featurestore.stack.processors import ProcessorService

    settings = load_settings()
    service = ProcessorService(settings, name, _argv(kwargs))
    pid = service.process.pid()
    if pid is not None:
        click.echo(f"processor {name} already runs (pid {pid})")
        return
    service.prepare()
    service.launch()
    await_start(service, service.start_timeout)
    click.echo(
        f"processor {name} started (pid {service.process.pid()}), log {service.process.log_file}"
    )


def await_start(service: ProcessorService, timeout_s: float, interval_s: float = 0.5) -> None:
    """Wait for the processor ``service`` launched to report ready; stop it if it does not.

    Says at once what it waits for and for how long at most. When the processor does not
    report ready in time, or the wait is interrupted (Ctrl-C), the process this command
    launched is stopped by its PID (as ``processors stop`` does), so that no processor is left
    retrying in the background, and the reason is printed on stderr.

    Raises:
        SystemExit: 1 when the processor did not start, 130 when interrupted.
    """
    from featurestore.stack.process import wait_until

    name, process = service.processor, service.process
    click.echo(
        f"processor {name} (pid {process.pid()}): waiting up to {timeout_s:.0f} s for it to "
        f"reach Kafka, PostgreSQL and Redis and report ready; log {process.log_file}"
    )
    try:
        ready = wait_until(
            lambda: service.healthy() or process.exited_early(), timeout_s, interval_s
        )
    except KeyboardInterrupt:
        _give_up(service, "interrupted")
        sys.exit(130)
    if ready and service.healthy():
        return
    if ready:  # exited on its own
        reason = f"exited during start ({process.exit_reason()})"
    else:
        waits = service.not_serving() or {}
        waiting = "; ".join(f"{backend}: {why}" for backend, why in sorted(waits.items()))
        reason = f"did not report ready within {timeout_s:.0f} s" + (
            f" (waiting for {waiting})" if waiting else ""
        )
    _give_up(service, reason)
    sys.exit(1)


def _give_up(service: ProcessorService, reason: str) -> None:
    """Stop the processor this command launched, if it still runs, and say why on stderr."""
    pid = service.process.pid()
    stopped = pid is not None and service.stop()
    what = f"; stopped it (pid {pid})" if stopped else ""
    click.echo(
        f"processor {service.processor} {reason}{what}; see {service.process.log_file}", err=True
    )


@processors.command()
@_name
def stop(name: str) -> None:
    """Stop the processor (it finishes its running batch; a later start resumes after it)."""
    from featurestore.config import load_settings
    from featurestore.stack.processors import ProcessorService

    service = ProcessorService(load_settings(), name)
    click.echo(
        f"processor {name} stopped" if service.stop() else f"processor {name} is not running"
    )


@processors.command()
@_name
@project_option
@_topic
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(name: str, project: str | None, topic: str | None, yes: bool) -> None:
    """Forget the processor's state: its next start reads the topic from the beginning.

    The feature tables are not touched; drop or truncate them first to rebuild them.
    """
    import psycopg

    from featurestore.config import load_settings
    from featurestore.error_maps import postgres_errors
    from featurestore.stack.processors import ProcessorService
    from processors.state_table import delete_state
    from processors.state_table import ensure_state_table

    settings = load_settings()
    options = _options(name, project=project, topic=topic)
    if ProcessorService(settings, name).process.pid() is not None:
        raise click.ClickException(f"processor {name} is running; stop it first")
    if not yes:
        click.confirm(f"forget the state of processor {name}?", abort=True)
    with (
        postgres_errors(f"resetting the state of processor {name}"),
        psycopg.connect(settings.postgres.dsn, autocommit=True) as conn,
    ):
        ensure_state_table(conn)
        count = delete_state(conn, name, options.project, options.topic_of(settings))
    click.echo(f"processor {name}: {count} partition states deleted")


@processors.command()
@_name
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
def status(name: str, as_json: bool) -> None:
    """Show whether the processor runs and its progress (events/s, lag, last batch).

    Applications that split a topic (``--partitions``) each write a status file of their own;
    every one is shown. A name no processor has run under is refused, naming the known ones.
    """
    from featurestore.config import load_settings
    from featurestore.processor_files import processor_dir
    from featurestore.processor_files import status_file
    from featurestore.stack.processors import ProcessorService
    from processors.status import read_status

    settings = load_settings()
    service = ProcessorService(settings, name)
    pid = service.process.pid()
    home = processor_dir(settings, name)
    if pid is None and not home.is_dir():
        parent = home.parent
        known = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        raise click.ClickException(
            f"no processor named {name!r} has run with the data folder {settings.data_dir}"
            f" (known: {', '.join(known) or 'none'})"
        )
    single = read_status(status_file(settings, name))
    split = {
        f.stem.removeprefix("status-"): read_status(f) for f in sorted(home.glob("status-*.json"))
    }
    if as_json:
        document = {"running": pid is not None, "pid": pid, "status": single, "applications": split}
        click.echo(json.dumps(document, indent=1))
        return
    click.echo(f"processor {name}: " + (f"running, pid {pid}" if pid else "not running"))
    shown = [("", single)] if single is not None else []
    shown += [(f"application {instance}", data) for instance, data in split.items() if data]
    if not shown:
        click.echo("  no batch processed yet")
    for title, data in shown:
        if title:
            click.echo(f"  {title}:")
        _echo_status(data, "    " if title else "  ")


def _echo_status(data: dict[str, Any], indent: str) -> None:
    """One status file's lines: the last batch, its rows and times, the totals."""
    rate = data.get("events_per_s")
    lines = [
        f"topic {data.get('topic')} -> project {data.get('project')}",
        f"last batch {data['batch_id']} at {data['finished_at']}: {data['records']} records,"
        f" {data['rows']} feature rows, {data['dead_letters']} dead letters",
    ]
    by_view = data.get("rows_by_view") or {}
    if by_view:
        lines.append("rows: " + ", ".join(f"{k} {v}" for k, v in sorted(by_view.items())))
    rate_text = f"{rate:,.0f} events/s" if rate is not None else "events/s n/a"
    engine = data.get("engine", "spark")
    which = "spark batch" if engine == "spark" else "batch (kafka engine)"
    lines.append(f"last completed {which}: {data.get('batch_ms')} ms, {rate_text}")
    spark_ms = data.get("spark_ms") or {}
    if spark_ms:
        lines.append("spark: " + ", ".join(f"{k} {v} ms" for k, v in spark_ms.items()))
    lines.append(f"lag: {data.get('lag')} records behind the topic's end")
    lines.append("time: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in data["seconds"].items()))
    lines.append("totals: " + ", ".join(f"{k} {v}" for k, v in data.get("totals", {}).items()))
    for line in lines:
        click.echo(indent + line)


@processors.command()
@_name
@_job_options
@click.option(
    "--from", "start", default=None, help="Start: ISO time with offset, or Spark JSON offsets."
)
@click.option("--to", "end", default=None, help="End (exclusive): ISO time or JSON offsets.")
def backfill(name: str, start: str | None, end: str | None, **kwargs: Any) -> None:
    """Process the whole topic (or a range) in one batch job, through the same sinks."""
    from featurestore.config import load_settings
    from processors.spark import BackfillRange
    from processors.spark import run_backfill

    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    span = BackfillRange(_bound(start), _bound(end))
    report = run_backfill(settings, _options(name, **kwargs), span)
    click.echo(
        f"backfill: {report.records} records -> {report.rows} feature rows "
        f"({', '.join(f'{k} {v}' for k, v in sorted(report.rows_by_view.items())) or 'none'}), "
        f"{report.dead_letters} dead letters ({report.duplicates} duplicates, {report.late} late)"
    )


@processors.command()
@project_option
@click.option("--topic", default=None, help="Event topic (default: the trades topic).")
@comma_list("--entities", required=True, help="Entity keys (symbols), comma-separated.")
@click.option(
    "--from", "start", required=True, type=AWARE_TIME,
    help="Start of the range: ISO time with a UTC offset (e.g. 2024-01-02T15:00+00:00).",
)  # fmt: skip
@click.option(
    "--to", "end", required=True, type=AWARE_TIME,
    help="End of the range (exclusive): ISO time with a UTC offset.",
)  # fmt: skip
@click.option(
    "--wait", "wait_s", type=FiniteFloat(min=0), default=60.0, show_default=True,
    help="Seconds to wait for the processors to apply the log's end.",
)  # fmt: skip
def correct(
    project: str | None,
    topic: str | None,
    entities: tuple[str, ...],
    start: datetime,
    end: datetime,
    wait_s: float,
) -> None:
    """Recompute a range of the views from the log in event-time order (late events included).

    For events appended after their time (a healed gap): the running processors took them as
    late; this rewrites the entities' rows of [--from, --to) and of the windows that cover it.
    """
    from featurestore.config import load_settings
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.errors import FeatureStoreError
    from processors.correction import correct_range

    settings = load_settings()
    try:
        definitions = load_definitions(settings, project or PROJECT)
        report = correct_range(
            settings, definitions, topic or settings.topics.trades,
            list(entities), start, end, wait_s=wait_s,
        )  # fmt: skip
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    history = f" (and {report.history} before them for prev())" if report.history else ""
    click.echo(
        f"corrected {report.start.isoformat()} .. {report.end.isoformat()} from"
        f" {report.events} events{history}: "
        + ", ".join(
            f"{name} {report.deleted[name]} -> {report.written[name]} rows"
            for name in sorted(report.written)
        )
    )
    if report.unseeded:
        click.echo(
            f"note: no earlier value for prev() of {', '.join(report.unseeded)} in the log"
            " read back: their first event of the range reads null, as at the stream's start"
        )


def _bound(text: str | None) -> datetime | str | None:
    if text is None or text.lstrip().startswith("{"):
        return text
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither an ISO time nor JSON offsets") from None
