"""``featurestore ingest`` (files, metrics, synthetic market and metrics) and ``replay``."""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import click

from featurestore.cli._options import FiniteFloat
from featurestore.cli._options import comma_list
from featurestore.cli._options import option_group
from featurestore.cli._options import positive_seconds

if TYPE_CHECKING:
    from featurestore.config import Settings
    from featurestore.ingest import EventSource
    from featurestore.ingest import IngestSummary
    from featurestore.ingest import RecordKind
    from featurestore.ingest import SourceRecord
    from featurestore.ingest.vendor.backfill import LoggedIds
    from featurestore.ingest.vendor.gaps import Gap
    from featurestore.ingest.vendor.rest import RestClient

__all__ = ["ingest"]

_FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _settings() -> Settings:
    from featurestore.config import load_settings

    return load_settings()


def _expand(paths: Iterable[Path]) -> list[Path]:
    """The files given, and the event files in the folders given (by their suffixes).

    Raises:
        click.UsageError: nothing to read: no path given, or only folders without event files
            (the message names them and the suffixes that count).
    """
    files: list[Path] = []
    empty: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.name.lower().endswith(_FILE_SUFFIXES))
            files.extend(found)
            if not found:
                empty.append(str(path))
        else:
            files.append(path)
    if not files and empty:
        raise click.UsageError(
            f"no event files in {', '.join(empty)}: a folder's event files are those named"
            f" *{', *'.join(_FILE_SUFFIXES)}"
        )
    if not files:
        raise click.UsageError("no event files given")
    return files


def _start(start: datetime | None) -> datetime:
    """The first event time of a generator: ``--start`` as UTC, or now to the second."""
    return start.replace(tzinfo=UTC) if start else datetime.now(UTC).replace(microsecond=0)


def _merged(sources: list[EventSource]) -> Iterable[SourceRecord]:
    from featurestore.ingest import merge_by_event_time

    return sources[0] if len(sources) == 1 else merge_by_event_time(sources)


def _until_signalled(
    records: Iterable[SourceRecord], stop: threading.Event | None = None
) -> Iterator[SourceRecord]:
    """Stop reading at SIGTERM or SIGINT, so that what was read is still delivered and counted.

    ``make down`` stops a running feed with SIGTERM; the ingest then flushes its producer and
    prints its summary instead of dying with records in flight. ``stop`` is the event the
    signals set, for a source that waits for records (the live feed) and must see it itself.
    """
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        for record in records:
            if stop.is_set():
                click.echo("stopping: signal received; delivering what was read", err=True)
                return
            yield record
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class _Sending:
    """How a command sends its records: the options every ``ingest`` command takes."""

    connect_timeout: float
    delivery_timeout: float
    topic: str | None = None
    """``--topic``; None: the settings' topic of each kind."""
    speed: float | None = None
    """Multiple of real time; None: as fast as possible."""
    live: bool = False
    """A generator started at now, in real time: each event is sent at its own time."""


def _run(
    settings: Settings,
    records: Iterable[SourceRecord],
    *,
    kinds: Iterable[RecordKind],
    sending: _Sending,
    stop: threading.Event | None = None,
) -> None:
    from featurestore.errors import FeatureStoreError
    from featurestore.events import ConfluentSchemaStore
    from featurestore.ingest import IngestDeliveryError
    from featurestore.ingest import IngestOptions
    from featurestore.ingest import Ingestor
    from featurestore.ingest.metrics import IngestMetrics
    from featurestore.telemetry import process_telemetry

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = IngestOptions(
        kafka=settings.kafka.connection,
        topics=_topics(settings, kinds, sending.topic),
        dead_letter_topic=settings.topics.dead_letter,
        partitions=settings.kafka.default_partitions,
        replication_factor=settings.kafka.replication_factor,
        min_insync_replicas=settings.kafka.min_insync_replicas,
        speed=sending.speed,
        live=sending.live and sending.speed is not None,
        connect_timeout_s=sending.connect_timeout,
        delivery_timeout_s=sending.delivery_timeout,
        progress_every=100_000,
    )
    telemetry = process_telemetry(settings, "ingest", settings.metrics.ingest_port)
    try:
        with (
            ConfluentSchemaStore.from_settings(settings.schema_registry) as store,
            Ingestor(
                options,
                store,
                on_wait=lambda m: click.echo(m, err=True),
                metrics=IngestMetrics(telemetry.meter_provider),
            ) as ingestor,
        ):
            summary = ingestor.run(
                _until_signalled(records, stop),
                progress=lambda s: click.echo(f"... read {s.read}", err=True),
            )
    except IngestDeliveryError as exc:
        _echo_summary(exc.summary)
        raise click.ClickException(str(exc)) from exc
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        telemetry.close()
    _echo_summary(summary)


def _topics(
    settings: Settings, kinds: Iterable[RecordKind], topic: str | None
) -> Mapping[RecordKind, str]:
    """The topic of each kind: the settings' own, or ``--topic`` where there is one kind."""
    from featurestore.ingest import EVENT_KINDS

    wanted = sorted(set(kinds))
    if topic is not None and len(wanted) > 1:
        raise click.UsageError(
            f"--topic names one topic, but the input holds {' and '.join(wanted)} records"
        )
    return {k: topic or EVENT_KINDS[k].default_topic(settings.topics) for k in wanted}


def _echo_summary(summary: IngestSummary) -> None:
    rate = summary.read / summary.elapsed_s if summary.elapsed_s else 0.0
    sent = ", ".join(f"{count} to {topic}" for topic, count in summary.sent_by_topic.items())
    click.echo(
        f"read {summary.read}, sent {sent or 0}, dead-lettered"
        f" {summary.dead_lettered} to {summary.dead_letter_topic}, failed {summary.failed}"
        f" in {summary.elapsed_s:.1f} s ({rate:,.0f} records/s)"
    )
    for code, count in sorted(summary.reasons.items()):
        click.echo(f"  dead-letter reason {code}: {count}")


_speed = click.option(
    "--speed",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Replay at this multiple of real time (10 = 10x), pacing by event-time deltas.",
)
_topic = click.option(
    "--topic",
    default=None,
    help="Event topic (default: the settings' topic of the kind: trades, quotes or metrics).",
)
_with_timeouts = option_group(
    click.option(
        "--connect-timeout",
        type=positive_seconds(),
        default=60.0,
        show_default=True,
        help="Seconds to wait for Kafka, then for the schema registry, before failing.",
    ),
    click.option(
        "--delivery-timeout",
        type=positive_seconds(),
        default=600.0,
        show_default=True,
        help="Seconds a record may stay unacknowledged before it counts as failed: a broker "
        "away for less is ridden through (the producer retries, and reading pauses while its "
        "queue is full).",
    ),
)


@dataclass(frozen=True)
class _Generation:
    """The options every generator command shares: its bounds and seed, pacing and sending."""

    bounds: dict[str, Any]
    """:class:`~featurestore.ingest.sources.arrivals.GeneratorBounds`' fields, for a config."""
    fast: bool
    sending: _Sending

    def run(self, generate: Callable[[], EventSource]) -> None:
        """Run the source ``generate`` builds (a ConfigurationError is a usage error).

        Paced at real time an endless generator is a live feed; as fast as possible it is a
        flood, so --fast needs a bound.
        """
        from featurestore.errors import ConfigurationError

        if self.fast and self.bounds["count"] is None and self.bounds["duration_s"] is None:
            raise click.UsageError("--fast needs a bound: --count or --duration")
        try:
            source = generate()
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from exc
        sending = replace(self.sending, speed=None) if self.fast else self.sending
        _run(_settings(), source, kinds=[source.kind], sending=sending)


def _generator(
    events: str, *, over: str, rate: float
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options of a generator of ``events`` spread ``over`` its keys, as one ``generation``.

    The command gets its own options, and a :class:`_Generation` for the shared ones: --rate
    (``rate`` by default), --seed, --count, --duration, --start, --fast, --speed, --topic and
    the timeouts.
    """
    options = option_group(
        click.option(
            "--rate",
            type=FiniteFloat(min=0, min_open=True),
            default=rate,
            show_default=True,
            help=f"{events.capitalize()} per second of event time, all {over} together.",
        ),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--count", type=click.IntRange(min=1), default=None, help=f"Stop after N {events}."
        ),
        click.option(
            "--duration",
            type=FiniteFloat(min=0, min_open=True),
            default=None,
            help="Stop after this many seconds of event time.",
        ),
        click.option(
            "--start",
            type=click.DateTime(),
            default=None,
            help="Event time of the first event, UTC (default: now). Fix it to reproduce a run.",
        ),
        click.option("--fast", is_flag=True, help="As fast as possible instead of at --speed."),
        click.option(
            "--speed",
            type=FiniteFloat(min=0, min_open=True),
            default=1.0,
            show_default=True,
            help="Multiple of real time to emit at.",
        ),
        _topic,
        _with_timeouts,
    )

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def with_generation(
            *,
            seed: int,
            count: int | None,
            duration: float | None,
            start: datetime | None,
            fast: bool,
            speed: float,
            topic: str | None,
            connect_timeout: float,
            delivery_timeout: float,
            **own: Any,
        ) -> None:
            bounds = {"start": _start(start), "seed": seed, "count": count, "duration_s": duration}
            live = start is None and speed == 1.0
            sending = _Sending(connect_timeout, delivery_timeout, topic, speed, live)
            command(**own, generation=_Generation(bounds, fast, sending))

        return options(with_generation)

    return decorate


def _file_replay(command: Callable[..., None]) -> Callable[..., None]:
    """--topic, --speed and the timeouts of a file replay, given to the command as ``sending``."""

    @functools.wraps(command)
    def with_sending(
        *,
        topic: str | None,
        speed: float | None,
        connect_timeout: float,
        delivery_timeout: float,
        **own: Any,
    ) -> None:
        command(**own, sending=_Sending(connect_timeout, delivery_timeout, topic, speed))

    return option_group(_topic, _speed, _with_timeouts)(with_sending)


def _run_files(open_sources: Callable[[], list[EventSource]], sending: _Sending) -> None:
    """Replay the files ``open_sources`` opens, merged by event time (a ValidationError fails)."""
    from featurestore.errors import ValidationError

    try:
        sources = open_sources()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    _run(_settings(), _merged(sources), kinds=[s.kind for s in sources], sending=sending)


@click.group()
def ingest() -> None:
    """Send trades, quotes and metrics into the event log; invalid ones are dead-lettered."""


@ingest.command("files")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["auto", "lean", "csv", "parquet"]),
    default="auto",
    show_default=True,
    help="lean: LEAN/AlgoSeek tick trade/quote files; csv/parquet: the documented columns.",
)
@_file_replay
def ingest_files(paths: tuple[Path, ...], file_format: str, sending: _Sending) -> None:
    """Replay trade and quote files (or folders of them) at their own event times, merged by time.

    Trades go to the trades topic, quotes (``*_Quote_Tick.csv.gz``, or CSV/Parquet with
    bid_price and ask_price columns) to the quotes topic. As fast as possible by default; with
    --speed, at that multiple of real time.
    """
    from featurestore.ingest import open_event_file

    _run_files(
        lambda: [open_event_file(p, file_format) for p in _expand(paths)],  # type: ignore[arg-type]
        sending,
    )


@ingest.command("synthetic")
@click.option("--symbols", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--jump-probability",
    type=FiniteFloat(min=0, max=1),
    default=None,
    help="Chance that a trade carries a price jump (default: the market's, 1 in 2,000).",
)
@_generator("trades", over="symbols", rate=1000.0)
def ingest_synthetic(
    symbols: int, jump_probability: float | None, rate: float, generation: _Generation
) -> None:
    """Generate a synthetic market (GBM prices with jumps), deterministic given seed and start."""
    from featurestore.ingest import MarketConfig
    from featurestore.ingest import SyntheticMarket

    config = MarketConfig(symbols=symbols, rate=rate, **generation.bounds)
    if jump_probability is not None:
        config = replace(config, jump_probability=jump_probability)
    generation.run(lambda: SyntheticMarket(config))


@ingest.command("metrics")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--entity-column", required=True, help="Column of the entity (the Kafka key).")
@click.option(
    "--time-column",
    required=True,
    help="Column of the event time: ISO 8601 with an offset (CSV) or a timestamp (Parquet).",
)
@click.option("--value-column", required=True, help="Column of the numeric value.")
@click.option("--name", default="value", show_default=True, help="The metric's name.")
@click.option(
    "--name-column",
    default=None,
    help="Column of each row's metric name (a table of several metrics), instead of --name.",
)
@comma_list(
    "--tag-columns",
    help="Columns whose values become tags (column name -> value), comma-separated.",
)
@_file_replay
def ingest_metrics(
    paths: tuple[Path, ...],
    entity_column: str,
    time_column: str,
    value_column: str,
    name: str,
    name_column: str | None,
    tag_columns: tuple[str, ...],
    sending: _Sending,
) -> None:
    """Send metric observations from CSV (header row) or Parquet files to the metrics topic.

    Each row is one observation of the named columns; the id is <file>:<line>. Rows without a
    usable entity, time or finite value go to the dead-letter topic with the reason.
    """
    from featurestore.ingest import metric_layout
    from featurestore.ingest import open_event_file

    if not name.strip():
        raise click.UsageError("--name must not be empty")
    if name_column is not None and name != "value":
        raise click.UsageError("--name and --name-column exclude each other")

    def open_sources() -> list[EventSource]:
        layout = metric_layout(
            entity_column=entity_column,
            time_column=time_column,
            value_column=value_column,
            name=name,
            name_column=name_column,
            tag_columns=list(tag_columns),
        )
        return [open_event_file(p, layout=layout) for p in paths]

    _run_files(open_sources, sending)


@ingest.command("synthetic-metrics")
@click.option("--entities", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--name",
    "names",
    multiple=True,
    default=("value",),
    show_default=True,
    help="A metric every entity reports (repeat for several: cpu_load, mem_used, ...).",
)
@click.option(
    "--spike-probability",
    type=FiniteFloat(min=0, max=1),
    default=0.002,
    show_default=True,
    help="Chance that an observation is a spike.",
)
@_generator("observations", over="entities", rate=100.0)
def ingest_synthetic_metrics(
    entities: int,
    names: tuple[str, ...],
    spike_probability: float,
    rate: float,
    generation: _Generation,
) -> None:
    """Generate metrics: per entity a random walk with rare spikes; seeded, reproducible."""
    from featurestore.ingest import MetricStream
    from featurestore.ingest import MetricStreamConfig

    def generate() -> MetricStream:
        if not all(name.strip() for name in names):
            raise click.UsageError("--name must not be empty")
        config = MetricStreamConfig(
            entities=entities,
            rate=rate,
            names=names,
            spike_probability=spike_probability,
            **generation.bounds,
        )
        return MetricStream(config)

    generation.run(generate)


def _symbols(given: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
    symbols = [s.strip().upper() for s in (given or default) if s.strip()]
    if not symbols:
        raise click.UsageError(
            "no symbols: give --symbols AAPL,MSFT or FEATURESTORE_VENDOR__SYMBOLS"
        )
    return symbols


def _range(start: str | None, end: str | None) -> tuple[datetime, datetime] | None:
    """The range of ``--start``/``--end``: New York days (both included) or UTC instants.

    A date is a whole New York day; a date-time is an instant (UTC unless it says otherwise), and
    ``--end`` as a date-time is excluded.
    """
    from datetime import date
    from datetime import time
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    if start is None and end is None:
        return None
    if start is None or end is None:
        raise click.UsageError("give both --start and --end, or neither")
    new_york = ZoneInfo("America/New_York")

    def parse(value: str, name: str, is_end: bool) -> datetime:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            day += timedelta(days=1) if is_end else timedelta()
            return datetime.combine(day, time(), new_york).astimezone(UTC)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is neither a date (2024-03-01) nor a date-time (2024-03-01T14:30)",
                param_hint=name,
            ) from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    first, last = parse(start, "--start", False), parse(end, "--end", True)
    if last <= first:
        raise click.BadParameter("--end must be after --start", param_hint="--end")
    return first, last


_vendor_symbols = comma_list(
    "--symbols", help="Tickers, comma-separated (default: FEATURESTORE_VENDOR__SYMBOLS)."
)
_with_range = option_group(
    click.option("--start", default=None, help="First day (New York) or UTC date-time."),
    click.option("--end", default=None, help="Last day (included) or UTC date-time (excluded)."),
)


def _vendor_clients(settings: Settings) -> tuple[RestClient, LoggedIds]:
    """The vendor's REST client, and what the settings' topics already hold (ids by range)."""
    from featurestore.events import ConfluentSchemaStore
    from featurestore.ingest.vendor import RestClient
    from featurestore.ingest.vendor import logged_ids
    from featurestore.resilience import Backoff

    vendor = settings.vendor
    rest = RestClient(
        vendor.rest_url,
        vendor.key(),
        page_limit=vendor.rest_page_limit,
        timeout_s=vendor.rest_timeout_s,
        retries=vendor.rest_retries,
        max_retry_after_s=vendor.max_retry_after_s,
        backoff=Backoff(initial_s=vendor.reconnect_initial_s, max_s=vendor.reconnect_max_s),
    )
    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    click.get_current_context().call_on_close(store.close)  # when the command ends
    topics: dict[RecordKind, str] = {
        "trade": settings.topics.trades,
        "quote": settings.topics.quotes,
    }

    def logged(
        kind: RecordKind, symbols: Collection[str], start: datetime, end: datetime
    ) -> set[str]:
        return logged_ids(settings.kafka.connection, store, topics[kind], symbols, start, end)

    return rest, logged


@ingest.command("live")
@_vendor_symbols
@click.option("--no-quotes", is_flag=True, help="Trades only (no Q.<symbol> subscription).")
@click.option(
    "--heal-interval",
    type=FiniteFloat(min=0),
    default=None,
    help="Seconds between gap heals (0: never; default FEATURESTORE_VENDOR__HEAL_INTERVAL_S).",
)
@_with_timeouts
def ingest_live(
    symbols: tuple[str, ...],
    no_quotes: bool,
    heal_interval: float | None,
    connect_timeout: float,
    delivery_timeout: float,
) -> None:
    """Stream the vendor's trades and quotes of SYMBOLS into the log until SIGTERM/SIGINT.

    Reconnects with capped, jittered backoff and subscribes again; the span a break missed is
    backfilled through REST, and the bars table's gaps are healed every --heal-interval. Each
    vendor trade lands in the log once (ids derived from the vendor's ids).
    """
    from datetime import timedelta

    from featurestore.errors import FeatureStoreError
    from featurestore.ingest.vendor import BarsTable
    from featurestore.ingest.vendor import Healer
    from featurestore.ingest.vendor import LiveFeed
    from featurestore.ingest.vendor import VendorStream
    from featurestore.resilience import Backoff

    settings = _settings()
    vendor = settings.vendor
    wanted = _symbols(symbols, vendor.symbols)
    quotes = vendor.quotes and not no_quotes
    interval = vendor.heal_interval_s if heal_interval is None else heal_interval
    try:
        rest, logged = _vendor_clients(settings)
        stream = VendorStream(
            vendor.ws_url,
            vendor.key(),
            wanted,
            quotes=quotes,
            backoff=Backoff(initial_s=vendor.reconnect_initial_s, max_s=vendor.reconnect_max_s),
        )
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    healer = Healer(
        BarsTable(settings.postgres.dsn, vendor.bars_table, vendor.bars_key),
        rest,
        logged,
        settle=timedelta(seconds=vendor.heal_settle_s),
    )
    stop = threading.Event()
    feed = LiveFeed(
        stream,
        rest,
        wanted,
        kinds=("trade", "quote") if quotes else ("trade",),
        overlap=timedelta(seconds=vendor.gap_overlap_s),
        healer=healer,
        heal_interval=timedelta(seconds=interval) if interval else None,
        heal_days=vendor.heal_days,
        stop=stop,
    )
    click.echo(f"live: {', '.join(wanted)} from {vendor.ws_url}", err=True)
    _run(
        settings,
        feed,
        kinds=feed.kinds,
        sending=_Sending(connect_timeout, delivery_timeout),
        stop=stop,
    )
    click.echo(
        f"copies dropped: {feed.copies.copies}; reconnect backfills:"
        f" {feed.stats.gap_backfills}; heals: {feed.stats.heals}"
    )


@ingest.command("backfill")
@_vendor_symbols
@_with_range
@click.option("--no-quotes", is_flag=True, help="Trades only.")
@_with_timeouts
def ingest_backfill(
    symbols: tuple[str, ...],
    start: str | None,
    end: str | None,
    no_quotes: bool,
    connect_timeout: float,
    delivery_timeout: float,
) -> None:
    """Read the vendor's trades (and quotes) of a range through REST into the log.

    Records already in the log (same vendor id) are not sent again.
    """
    from featurestore.errors import FeatureStoreError
    from featurestore.ingest.vendor import CopyFilter
    from featurestore.ingest.vendor import vendor_records

    settings = _settings()
    wanted = _symbols(symbols, settings.vendor.symbols)
    span = _range(start, end)
    if span is None:
        raise click.UsageError("backfill needs --start and --end")
    kinds: tuple[RecordKind, ...] = ("trade",) if no_quotes else ("trade", "quote")
    try:
        rest, logged = _vendor_clients(settings)
        copies = CopyFilter()
        for kind in kinds:
            copies.logged |= logged(kind, wanted, *span)
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    records = copies.filter(vendor_records(rest, kinds, wanted, *span))
    _run(
        settings,
        records,
        kinds=kinds,
        sending=_Sending(connect_timeout, delivery_timeout),
    )
    click.echo(f"copies dropped (already in the log): {copies.copies}")


@ingest.command("heal")
@_vendor_symbols
@_with_range
@click.option("--dry-run", is_flag=True, help="Report the gaps; backfill nothing.")
@click.option(
    "--correct/--no-correct", default=True, show_default=True,
    help="Then recompute the healed ranges' rows from the log (processors correct).",
)  # fmt: skip
@click.option(
    "--correct-wait", type=FiniteFloat(min=0), default=120.0, show_default=True,
    help="Seconds to wait for the processors to apply the healed trades first.",
)  # fmt: skip
@_with_timeouts
def ingest_heal(
    symbols: tuple[str, ...],
    start: str | None,
    end: str | None,
    dry_run: bool,
    correct: bool,
    correct_wait: float,
    connect_timeout: float,
    delivery_timeout: float,
) -> None:
    """Find session minutes without bars (bars table vs the trading calendar) and backfill them.

    Without --start/--end: the last FEATURESTORE_VENDOR__HEAL_DAYS sessions up to now, less
    the settle time. The running processors take the healed trades as late; the ranges' rows
    are then recomputed from the log in event-time order (--no-correct: not).
    """
    from datetime import timedelta

    from featurestore.errors import FeatureStoreError
    from featurestore.ingest.vendor import BarsTable
    from featurestore.ingest.vendor import CopyFilter
    from featurestore.ingest.vendor import Healer
    from featurestore.ingest.vendor import HealReport
    from featurestore.ingest.vendor import heal_window
    from featurestore.ingest.vendor.backfill import settled_gaps

    settings = _settings()
    vendor = settings.vendor
    wanted = _symbols(symbols, vendor.symbols)
    now = datetime.now(UTC)
    span = _range(start, end) or heal_window(now, vendor.heal_days)
    minutes = BarsTable(settings.postgres.dsn, vendor.bars_table, vendor.bars_key)
    settle = timedelta(seconds=vendor.heal_settle_s)
    try:
        gaps = settled_gaps(minutes, wanted, span[0], span[1], now, settle)
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    for symbol in wanted:
        mine = [g for g in gaps if g.symbol == symbol]
        shown = ", ".join(f"{g.start:%Y-%m-%d %H:%M}+{g.minutes}m" for g in mine[:5])
        more = f" and {len(mine) - 5} more" if len(mine) > 5 else ""
        click.echo(
            f"{symbol}: {len(mine)} gaps, {sum(g.minutes for g in mine)} minutes"
            f"{': ' + shown + more if mine else ''}"
        )
    if dry_run or not gaps:
        return
    try:
        rest, logged = _vendor_clients(settings)
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    healer = Healer(minutes, rest, logged, settle=settle)
    report = HealReport()
    copies = CopyFilter()
    _run(
        settings,
        healer.records(gaps, report, copies),
        kinds=["trade"],
        sending=_Sending(connect_timeout, delivery_timeout),
    )
    click.echo(
        f"healed: {report.records} trades from the vendor for {len(report.gaps)} gaps"
        f" ({report.empty} without trades), {copies.copies} already in the log"
    )
    if correct:
        _correct_gaps(settings, report.gaps, correct_wait)


def _correct_gaps(settings: Settings, gaps: Sequence[Gap], wait_s: float) -> None:
    """Recompute the healed ranges' rows from the log (the processors took them as late).

    Copies already in the log count too: after a rebuild from the log, a heal finds the same
    gaps again and this recomputes them.
    """
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.errors import ConfigurationError
    from featurestore.errors import FeatureStoreError
    from featurestore.errors import NotFoundError
    from processors.correction import correct_range

    if not gaps:
        return
    symbols = sorted({g.symbol for g in gaps})
    start, end = min(g.start for g in gaps), max(g.end for g in gaps)
    try:
        definitions = load_definitions(settings, PROJECT)
        done = correct_range(
            settings, definitions, settings.topics.trades, symbols, start, end, wait_s=wait_s
        )
    except (ConfigurationError, NotFoundError) as exc:
        click.echo(f"bars not recomputed: {exc}")
        return
    except FeatureStoreError as exc:
        raise click.ClickException(f"the healed trades are in the log; {exc}") from exc
    click.echo(
        f"recomputed {', '.join(symbols)} {done.start:%Y-%m-%d %H:%M} .. {done.end:%H:%M}"
        f" from {done.events} events: "
        + ", ".join(f"{name} {n} rows" for name, n in sorted(done.written.items()))
    )
